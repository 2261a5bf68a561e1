//! One function from S3's answer to a failed request to the library's error kind, tested
//! on the exact 409/412 shapes AWS and LocalStack send.

use crate::error::ErrorKind;

/// The response type of the SDK's errors.
pub(crate) type HttpResponse = aws_sdk_s3::config::http::HttpResponse;

/// What a request was doing, for classifying its failure and for messages; its
/// string is the verb messages use ("cannot read ...").
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
pub(crate) enum Op {
    /// GetObject (also conditional).
    #[strum(serialize = "read")]
    Get,
    /// HeadObject.
    #[strum(serialize = "inspect")]
    Head,
    /// PutObject with `If-None-Match: *`.
    #[strum(serialize = "write")]
    PutCreate,
    /// PutObject with `If-Match`.
    #[strum(serialize = "write")]
    PutUpdate,
    /// Unconditional PutObject.
    #[strum(serialize = "write")]
    PutOverwrite,
    /// ListObjectsV2.
    #[strum(serialize = "list")]
    List,
    /// DeleteObject.
    #[strum(serialize = "delete")]
    Delete,
    /// HeadBucket.
    #[strum(serialize = "check")]
    CheckBucket,
}

pub(super) fn is_redirect(status: u16, code: Option<&str>) -> bool {
    matches!(status, 301 | 307)
        || matches!(
            code,
            Some(
                "PermanentRedirect"
                    | "AuthorizationHeaderMalformed"
                    | "IllegalLocationConstraintException"
            )
        )
}

/// Maps S3's answer to a failed request onto an error kind.
///
/// A lost conditional write is `412 PreconditionFailed`, or `409
/// ConditionalRequestConflict` when AWS sees the writes overlap in flight: both mean
/// that another writer won, so both are `AlreadyExists` for a create and
/// `PreconditionFailed` for an update. An update of a missing key is `404`: `NotFound`.
/// A missing bucket, refused access and a wrong region are `Config`: retrying does not
/// help, fixing the settings does.
#[must_use]
pub(crate) fn classify(op: Op, status: u16, code: Option<&str>) -> ErrorKind {
    let code = code.unwrap_or("");
    let lost_race = matches!(status, 409 | 412)
        || matches!(code, "PreconditionFailed" | "ConditionalRequestConflict");
    match op {
        _ if code == "NoSuchBucket" => ErrorKind::Config,
        Op::CheckBucket if status == 404 => ErrorKind::Config,
        Op::PutCreate if lost_race => ErrorKind::AlreadyExists,
        Op::PutUpdate if lost_race => ErrorKind::PreconditionFailed,
        _ if status == 404 || matches!(code, "NoSuchKey" | "NotFound") => ErrorKind::NotFound,
        _ if is_redirect(status, Some(code)) => ErrorKind::Config,
        _ if matches!(status, 401 | 403)
            || matches!(
                code,
                "AccessDenied"
                    | "InvalidAccessKeyId"
                    | "SignatureDoesNotMatch"
                    | "ExpiredToken"
                    | "InvalidToken"
                    | "AllAccessDisabled"
            ) =>
        {
            ErrorKind::Config
        }
        _ if code == "EntityTooLarge" => ErrorKind::TooLarge,
        // 409 outside a conditional write: OperationAborted, a conflicting operation
        // in progress; retrying helps.
        _ if status >= 500
            || matches!(status, 408 | 409 | 429)
            || matches!(
                code,
                "SlowDown"
                    | "RequestTimeout"
                    | "InternalError"
                    | "ServiceUnavailable"
                    | "OperationAborted"
            ) =>
        {
            ErrorKind::Unavailable
        }
        _ => ErrorKind::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_races_are_conflicts_whether_412_or_409() {
        for (status, code) in [
            (412, Some("PreconditionFailed")),
            (409, Some("ConditionalRequestConflict")),
            (412, None),
            (409, None),
        ] {
            assert_eq!(
                classify(Op::PutCreate, status, code),
                ErrorKind::AlreadyExists,
                "create {status} {code:?}"
            );
            assert_eq!(
                classify(Op::PutUpdate, status, code),
                ErrorKind::PreconditionFailed,
                "update {status} {code:?}"
            );
        }
    }

    #[test]
    fn update_of_a_missing_key_is_not_found() {
        assert_eq!(
            classify(Op::PutUpdate, 404, Some("NoSuchKey")),
            ErrorKind::NotFound
        );
        assert_eq!(
            classify(Op::Get, 404, Some("NoSuchKey")),
            ErrorKind::NotFound
        );
        assert_eq!(classify(Op::Head, 404, None), ErrorKind::NotFound);
    }

    #[test]
    fn setup_problems_are_config_errors() {
        assert_eq!(
            classify(Op::Get, 404, Some("NoSuchBucket")),
            ErrorKind::Config
        );
        assert_eq!(
            classify(Op::PutCreate, 404, Some("NoSuchBucket")),
            ErrorKind::Config
        );
        assert_eq!(classify(Op::CheckBucket, 404, None), ErrorKind::Config);
        assert_eq!(
            classify(Op::Get, 403, Some("AccessDenied")),
            ErrorKind::Config
        );
        assert_eq!(
            classify(Op::PutCreate, 403, Some("SignatureDoesNotMatch")),
            ErrorKind::Config
        );
        assert_eq!(
            classify(Op::PutCreate, 403, Some("InvalidAccessKeyId")),
            ErrorKind::Config
        );
        assert_eq!(classify(Op::CheckBucket, 301, None), ErrorKind::Config);
        assert_eq!(
            classify(Op::List, 400, Some("AuthorizationHeaderMalformed")),
            ErrorKind::Config
        );
    }

    #[test]
    fn server_trouble_is_unavailable() {
        assert_eq!(
            classify(Op::Get, 503, Some("SlowDown")),
            ErrorKind::Unavailable
        );
        assert_eq!(
            classify(Op::List, 500, Some("InternalError")),
            ErrorKind::Unavailable
        );
        assert_eq!(
            classify(Op::PutOverwrite, 409, Some("OperationAborted")),
            ErrorKind::Unavailable
        );
        assert_eq!(
            classify(Op::PutOverwrite, 400, Some("RequestTimeout")),
            ErrorKind::Unavailable
        );
        assert_eq!(
            classify(Op::Get, 400, Some("InvalidArgument")),
            ErrorKind::Internal
        );
        assert_eq!(
            classify(Op::PutOverwrite, 400, Some("EntityTooLarge")),
            ErrorKind::TooLarge
        );
    }
}
