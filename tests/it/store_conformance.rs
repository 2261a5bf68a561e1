//! The store conformance suite against real S3 servers (LocalStack and moto), plus the
//! S3 store's own behaviour: prefixes, SSE, content types, a missing bucket.

use crate::harness::{Backend, TestBucket};
use aws_sdk_s3::types::ServerSideEncryption;
use bytes::Bytes;
use jetvault_core::ErrorKind;
use jetvault_core::config::Sse;
use jetvault_core::store::{Metadata, PutMode, Store, conformance};

async fn suite_on(backend: Backend, prefix: &str) {
    let Some(bucket) = TestBucket::new(backend, "conformance").await else {
        return;
    };
    let store = bucket.store(prefix).await;
    conformance::suite(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn localstack_passes_the_conformance_suite() {
    suite_on(Backend::LocalStack, "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn localstack_passes_the_conformance_suite_under_a_prefix() {
    suite_on(Backend::LocalStack, "team/jetvault").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moto_passes_the_conformance_suite() {
    suite_on(Backend::Moto, "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moto_passes_the_conformance_suite_under_a_prefix() {
    suite_on(Backend::Moto, "team/jetvault").await;
}

/// Keys are relative to the prefix: stored under it, listed without it, and nothing
/// outside it is seen.
#[tokio::test]
async fn prefix_is_invisible_to_callers() {
    let Some(bucket) = TestBucket::new(Backend::LocalStack, "prefix").await else {
        return;
    };
    let inner = bucket.store("outer/inner").await;
    let root = bucket.store("").await;
    let none = Metadata::new();
    inner
        .put(
            "apps/a/x.json",
            Bytes::from_static(b"{}"),
            &none,
            PutMode::Create,
        )
        .await
        .unwrap();
    root.put(
        "apps/b/y.json",
        Bytes::from_static(b"{}"),
        &none,
        PutMode::Create,
    )
    .await
    .unwrap();
    let page = inner.list("", None, 100).await.unwrap();
    let keys: Vec<_> = page.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["apps/a/x.json"]);
    assert_eq!(inner.list_dirs("apps/").await.unwrap(), ["a"]);
    assert_eq!(root.list_dirs("apps/").await.unwrap(), ["b"]);
    assert_eq!(root.list_dirs("").await.unwrap(), ["apps", "outer"]);
    root.head("outer/inner/apps/a/x.json").await.unwrap();
    assert_eq!(
        inner.head("apps/b/y.json").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(
        inner
            .describe()
            .starts_with(&format!("s3://{}/outer/inner at http://", bucket.name))
    );
}

/// SSE and the Content-Type travel with every PutObject.
#[tokio::test]
async fn puts_carry_sse_and_content_type() {
    let Some(bucket) = TestBucket::new(Backend::LocalStack, "sse").await else {
        return;
    };
    let mut options = bucket.options();
    options.sse = Some(Sse::Aes256);
    let store = bucket.store_with("p", &options).await;
    let none = Metadata::new();
    for (key, content_type) in [
        ("a/0001-v1.json.zst", "application/zstd"),
        ("a/release.json", "application/json"),
    ] {
        store
            .put(key, Bytes::from_static(b"{}"), &none, PutMode::Create)
            .await
            .unwrap();
        let head = bucket
            .client
            .client()
            .head_object()
            .bucket(&bucket.name)
            .key(format!("p/{key}"))
            .send()
            .await
            .unwrap();
        assert_eq!(head.content_type(), Some(content_type), "{key}");
        assert_eq!(
            head.server_side_encryption(),
            Some(&ServerSideEncryption::Aes256),
            "{key}"
        );
    }
}

/// A store on a bucket that does not exist says so, and how to fix it.
#[tokio::test]
async fn missing_bucket_is_a_clear_config_error() {
    let Some(bucket) = TestBucket::new(Backend::LocalStack, "exists").await else {
        return;
    };
    let missing = jetvault_core::store::S3Store::connect(
        &format!("{}-missing", bucket.name),
        "",
        &bucket.options(),
    )
    .await
    .unwrap();
    let e = missing.check().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("does not exist"), "{e}");
    assert!(e.to_string().contains("create it"), "{e}");
    let e = missing
        .put(
            "k",
            Bytes::from_static(b"1"),
            &Metadata::new(),
            PutMode::Create,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("does not exist"), "{e}");
    bucket
        .store("")
        .await
        .check()
        .await
        .expect("the existing bucket checks out");
}

/// Listing pages of more than S3's 1,000 keys still honour the limit and the order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn long_listings_page_through() {
    let Some(bucket) = TestBucket::new(Backend::Moto, "paging").await else {
        return;
    };
    let store = std::sync::Arc::new(bucket.store("").await);
    let keys: Vec<String> = (0..1205).map(|i| format!("many/k{i:05}")).collect();
    let puts = keys.chunks(100).map(|chunk| {
        let store = std::sync::Arc::clone(&store);
        let chunk = chunk.to_vec();
        tokio::spawn(async move {
            for k in chunk {
                store
                    .put(&k, Bytes::new(), &Metadata::new(), PutMode::Create)
                    .await
                    .unwrap();
            }
        })
    });
    for t in futures::future::join_all(puts).await {
        t.unwrap();
    }
    let page = store.list("many/", None, 1100).await.unwrap();
    assert_eq!(page.objects.len(), 1100);
    assert!(page.truncated);
    let got: Vec<_> = page.objects.iter().map(|o| o.key.clone()).collect();
    assert_eq!(got, keys[..1100]);
    let rest = store.list("many/", Some(&keys[1099]), 1100).await.unwrap();
    assert!(!rest.truncated);
    let got: Vec<_> = rest.objects.iter().map(|o| o.key.clone()).collect();
    assert_eq!(got, keys[1100..]);
}
