//! The fewest moves that give a keyed array's shared items their new order, in
//! O(n log n): the items on a longest increasing subsequence of old positions (taken in
//! the new order) stay, and each other item moves once.
//!
//! Written here rather than taken from a crate: `similar` has no LIS (its patience diff
//! runs Myers, quadratic on a reversed array), and the `lis` crate depends on `fxhash`,
//! which is unmaintained.

use std::cmp::Ordering;

/// The moves that turn `0..n` into `wanted` (a permutation of `0..n`): `moved[p]` says
/// whether the item at old position `p` moves, and `ops` are JSON Patch moves, `(from,
/// to)`, each index counted when the move applies (`to` after the item was taken out).
#[derive(Debug)]
pub(super) struct Moves {
    pub moved: Vec<bool>,
    pub ops: Vec<(usize, usize)>,
}

pub(super) fn moves(wanted: &[usize]) -> Moves {
    let n = wanted.len();
    let stays = longest_increasing(wanted);
    let mut moved = vec![true; n];
    for &t in &stays {
        moved[wanted[t]] = false;
    }
    // Each item has a place in one total order for the whole run: an item not yet moved
    // sits at `(p + 1, 0, 0)` for its old position `p`; a moved item goes right after the
    // last staying item the new order puts before it, `(p + 1, 1, t)` for that item's
    // old position `p` (`(0, 1, t)` when there is none), after the moved items with a
    // smaller `t`. Every index is then a count of occupied places before a place.
    let mut anchor = 0;
    let mut next_stay = stays.iter().peekable();
    let mut landing = Vec::new();
    for (t, &p) in wanted.iter().enumerate() {
        if next_stay.peek() == Some(&&t) {
            next_stay.next();
            anchor = p + 1;
        } else {
            landing.push((t, p, (anchor, 1, t)));
        }
    }
    let mut places: Vec<(usize, usize, usize)> = (0..n).map(|p| (p + 1, 0, 0)).collect();
    places.extend(landing.iter().map(|l| l.2));
    places.sort_unstable();
    let rank = |place: &(usize, usize, usize)| {
        places
            .binary_search_by(|x| x.cmp(place))
            .unwrap_or_else(|i| i)
    };
    let mut occupied = Fenwick::new(places.len());
    for p in 0..n {
        occupied.add(rank(&(p + 1, 0, 0)), 1);
    }
    let mut ops = Vec::with_capacity(landing.len());
    for (_, p, place) in landing {
        let from_rank = rank(&(p + 1, 0, 0));
        let from = occupied.before(from_rank);
        occupied.add(from_rank, -1);
        let to_rank = rank(&place);
        let to = occupied.before(to_rank);
        occupied.add(to_rank, 1);
        if from != to {
            ops.push((from, to));
        }
    }
    Moves { moved, ops }
}

/// The indices of a longest strictly increasing subsequence of `seq` (patience sorting).
pub(super) fn longest_increasing(seq: &[usize]) -> Vec<usize> {
    // `tails[k]`: the index of the smallest last value of an increasing run of length
    // k + 1; `prev[i]`: the index before `i` on the run that ends at `i`.
    let mut tails: Vec<usize> = Vec::new();
    let mut prev = vec![usize::MAX; seq.len()];
    for (i, &v) in seq.iter().enumerate() {
        let k = tails.partition_point(|&j| seq[j].cmp(&v) == Ordering::Less);
        if k > 0 {
            prev[i] = tails[k - 1];
        }
        if k == tails.len() {
            tails.push(i);
        } else {
            tails[k] = i;
        }
    }
    let mut run = Vec::with_capacity(tails.len());
    let mut at = tails.last().copied();
    while let Some(i) = at {
        run.push(i);
        at = (prev[i] != usize::MAX).then(|| prev[i]);
    }
    run.reverse();
    run
}

/// Counts per place, with prefix sums in O(log n).
#[derive(Debug)]
struct Fenwick(Vec<i64>);

impl Fenwick {
    fn new(n: usize) -> Self {
        Self(vec![0; n + 1])
    }

    fn add(&mut self, place: usize, delta: i64) {
        let mut i = place + 1;
        while i < self.0.len() {
            self.0[i] += delta;
            i += i & i.wrapping_neg();
        }
    }

    /// How many are at places before `place`.
    fn before(&self, place: usize) -> usize {
        let (mut i, mut sum) = (place, 0);
        while i > 0 {
            sum += self.0[i];
            i -= i & i.wrapping_neg();
        }
        usize::try_from(sum).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn apply(n: usize, ops: &[(usize, usize)]) -> Vec<usize> {
        let mut v: Vec<usize> = (0..n).collect();
        for &(from, to) in ops {
            let x = v.remove(from);
            v.insert(to, x);
        }
        v
    }

    #[test]
    fn one_item_to_the_end_is_one_move() {
        let m = moves(&[1, 2, 3, 0]);
        assert_eq!(m.ops, [(0, 3)]);
        assert_eq!(m.moved, [true, false, false, false]);
        assert_eq!(longest_increasing(&[2, 1, 4, 3, 5]).len(), 3);
        assert!(moves(&[]).ops.is_empty());
    }

    proptest! {
        #[test]
        fn moves_give_the_order_with_the_fewest_moves(
            wanted in (0usize..40).prop_flat_map(|n| Just((0..n).collect::<Vec<_>>()).prop_shuffle())
        ) {
            let m = moves(&wanted);
            prop_assert_eq!(apply(wanted.len(), &m.ops), wanted.clone());
            // As few as the longest common subsequence that Myers (in `similar`) finds
            // between the two orders allows.
            let identity: Vec<usize> = (0..wanted.len()).collect();
            let common: usize = similar::capture_diff_slices(similar::Algorithm::Myers, &identity, &wanted)
                .iter()
                .map(|op| match op { similar::DiffOp::Equal { len, .. } => *len, _ => 0 })
                .sum();
            prop_assert_eq!(m.moved.iter().filter(|m| **m).count(), wanted.len() - common);
            prop_assert!(m.ops.len() <= wanted.len() - common);
        }
    }
}
