//! `match.path` over real requests: decoded paths, whole segments, exact paths.

use http::StatusCode;

use crate::common::{fault, get, one_stub};

#[tokio::test]
async fn a_prefix_matches_whole_segments_and_an_exact_path_only_itself_decoded() {
    let server = one_stub();
    let base = server.url("dep").unwrap();
    server
        .add_fault(
            "dep",
            fault(r#"{"error": {"status": 502}, "match": {"path": "/pay"}}"#),
        )
        .unwrap();
    server
        .add_fault(
            "dep",
            fault(r#"{"error": {"status": 503}, "match": {"path": "=/café"}}"#),
        )
        .unwrap();
    let cases = [
        ("/pay", 502),
        ("/pay/refund", 502),
        ("/p%61y?x=1", 502),
        ("/payments", 200),
        ("/pay%2Fments", 200),
        ("/caf%C3%A9", 503),
        ("/caf%c3%a9/menu", 200),
        ("/cafe", 200),
    ];
    for (path, status) in cases {
        let answer = get(&format!("{}{path}", base.trim_end_matches('/')))
            .await
            .unwrap();
        assert_eq!(
            answer.status,
            StatusCode::from_u16(status).unwrap(),
            "{path}"
        );
    }
}
