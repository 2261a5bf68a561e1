//! Records the git revision for `jetvault --version`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=JETVAULT_GIT_REV");
    // A build without .git (a container build) passes the revision in.
    if let Ok(rev) = std::env::var("JETVAULT_GIT_REV")
        && !rev.is_empty()
        && rev != "unknown"
    {
        println!("cargo:rustc-env=JETVAULT_GIT_REV={rev}");
        return;
    }
    let rev = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .is_some_and(|o| !o.stdout.is_empty());
    let rev = if dirty && rev != "unknown" {
        format!("{rev}-dirty")
    } else {
        rev
    };
    println!("cargo:rustc-env=JETVAULT_GIT_REV={rev}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");
}
