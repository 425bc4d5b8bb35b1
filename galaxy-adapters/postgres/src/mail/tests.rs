//! The outbox's plans and queries, on a real database.
#![allow(clippy::unwrap_used)]

use galaxy_core::domain::lease::Finish;

use super::*;
use crate::testing::{SeedQueue, TestDatabases};

/// Every node of an `EXPLAIN (FORMAT JSON)` plan.
fn plan_nodes(plan: &serde_json::Value) -> Vec<&serde_json::Value> {
    let mut nodes = Vec::new();
    let mut stack: Vec<&serde_json::Value> = plan
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("Plan"))
        .collect();
    while let Some(node) = stack.pop() {
        nodes.push(node);
        if let Some(children) = node.get("Plans").and_then(|p| p.as_array()) {
            stack.extend(children);
        }
    }
    nodes
}

fn node_type(node: &serde_json::Value) -> Option<&str> {
    node.get("Node Type").and_then(|t| t.as_str())
}

/// The finish's plan reads the outbox by primary key, and reads the batch once, even
/// where the statistics say no mail is being sent (they were taken while a backlog
/// waited): planned from `status = 'sending'`, that estimate made the finish scan the
/// whole outbox, or run `unnest(...)` again for every mail (4.5 ms for 100 mails on a
/// 10 000-row outbox, against 0.3 ms).
#[tokio::test]
async fn the_finish_reads_the_outbox_by_primary_key_whatever_the_statistics() {
    let databases = TestDatabases::from_env().await.unwrap();
    let store = databases.store().await.unwrap();
    let now = chrono::Utc::now();
    SeedQueue::Mail
        .seed(store.pool(), 10_000, now)
        .await
        .unwrap();
    sqlx::raw_sql("ANALYZE mail_deliveries; ANALYZE mail_deliveries_ready;")
        .execute(store.pool())
        .await
        .unwrap();
    let claim = ClaimRequest {
        token: LeaseToken::from_uuid(uuid::Uuid::new_v4()),
        now,
        lease: chrono::TimeDelta::seconds(60),
        limit: 100,
    };
    let claimed = store.claim_mail(&claim).await.unwrap();
    assert_eq!(claimed.len(), 100);
    let finishes: Vec<MailFinish> = claimed
        .iter()
        .map(|m| Finish {
            id: m.id,
            token: claim.token,
            outcome: MailAttemptEnd {
                attempt: Some(MailAttempt {
                    mail_id: m.id,
                    number: m.attempts,
                    outcome: AttemptOutcome::Sent,
                    detail: "250 OK".to_owned(),
                    at: now,
                }),
                next: MailNext::Sent,
            },
            at: now,
        })
        .collect();
    let plan = FinishPlan::new(&finishes, |id: MailId| id.as_uuid());
    let sql = format!("EXPLAIN (FORMAT JSON) {}", FINISH_SQL.as_str());
    let query = bind_finish(sqlx::query(sqlx::AssertSqlSafe(sql)), &plan);
    let row = query.fetch_one(store.pool()).await.unwrap();
    let explained: serde_json::Value = sqlx::Row::get(&row, 0);
    let text = explained.to_string();
    let nodes = plan_nodes(&explained);
    let outbox_scans: Vec<&str> = nodes
        .iter()
        .filter(|n| n.get("Relation Name").and_then(|r| r.as_str()) == Some(QUEUE.table))
        .filter_map(|n| node_type(n))
        .collect();
    assert!(
        !outbox_scans.is_empty() && !outbox_scans.contains(&"Seq Scan"),
        "the outbox read by primary key: {outbox_scans:?} in {text}"
    );
    // A nested loop may only repeat an index lookup, never the batch's unnest.
    for node in &nodes {
        if node_type(node) == Some("Nested Loop") {
            let inner = node
                .get("Plans")
                .and_then(|p| p.as_array())
                .and_then(|p| p.get(1))
                .and_then(|n| node_type(n));
            assert_eq!(inner, Some("Index Scan"), "{text}");
        }
    }
    databases.cleanup().await.unwrap();
}
