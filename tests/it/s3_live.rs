//! The S3 live target against LocalStack: read with a size limit, write, read back.

use crate::harness::{Backend, GRAFANA, TestBucket, corpus};
use bytes::Bytes;
use jetvault_core::ErrorKind;
use jetvault_core::config::LiveConfig;
use jetvault_core::live::LiveTarget;
use jetvault_core::live::s3::S3Target;

#[tokio::test]
async fn reads_and_writes_an_object_in_any_bucket() {
    let Some(bucket) = TestBucket::new(Backend::LocalStack, "live").await else {
        return;
    };
    let config = LiveConfig::S3 {
        bucket: bucket.name.clone(),
        key: "exports/crm/production.json".into(),
        endpoint: None,
        region: None,
        force_path_style: false,
    };
    // Endpoint and path style come from the store's settings.
    let target = S3Target::from_config(&config, &bucket.options())
        .await
        .unwrap();
    assert!(
        target.describe().contains(&bucket.endpoint),
        "{}",
        target.describe()
    );

    let e = target.read(1 << 20).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LiveMissing, "{e}");

    let body = Bytes::from(corpus(GRAFANA));
    target.write(body.clone()).await.unwrap();
    assert_eq!(target.read(body.len() as u64).await.unwrap(), body);

    let e = target.read(body.len() as u64 - 1).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooLarge, "{e}");
    assert!(e.to_string().contains("limit"), "{e}");
}
