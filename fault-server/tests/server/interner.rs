//! The journal's interned paths are bounded and freed by a reset.

use std::time::Duration;

use fault_server::CallOutcome;

use crate::common::{eventually, get, one_stub};

const NOT_KEPT: &str = "<path not kept: interner full>";

#[tokio::test]
async fn past_the_byte_budget_paths_show_a_placeholder_and_a_reset_frees_them() {
    let server = one_stub();
    let base = server.url("dep").unwrap();
    let long = |i: usize| format!("/{i}/{}", "p".repeat(50_000));
    // 4 MiB of interned text holds about 80 of these.
    let calls = 120;
    for i in 0..calls {
        get(&format!("{base}{}", long(i))).await.unwrap();
    }
    let ended = eventually(Duration::from_secs(10), || {
        server.stats("dep").unwrap().total.completed == calls as u64
    })
    .await;
    assert!(ended);
    let records = server.journal("dep").unwrap();
    assert_eq!(records.len(), calls);
    assert_eq!(records[0].path, long(0));
    assert_eq!(records[calls - 1].path, NOT_KEPT);
    let kept = records.iter().filter(|r| r.path != NOT_KEPT).count();
    assert!((60..100).contains(&kept), "{kept}");
    assert!(records.iter().all(|r| r.outcome == CallOutcome::Responded));
    // Counters do not depend on the paths kept.
    assert_eq!(
        server.stats("dep").unwrap().total.statuses[&200],
        calls as u64
    );

    server.reset();
    get(&format!("{base}{}", long(calls))).await.unwrap();
    assert!(
        eventually(Duration::from_secs(10), || server
            .stats("dep")
            .unwrap()
            .total
            .completed
            == 1)
        .await
    );
    assert_eq!(server.journal("dep").unwrap()[0].path, long(calls));
}
