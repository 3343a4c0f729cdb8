//! The audit log read back: filtered events, and CSV (the admin UI's export and
//! `keyway audit --csv` are one rendering).

use super::{Operator, OpsResult};
use crate::store::AuditFilter;

/// The most events one export holds.
pub const EXPORT_MAX: u32 = 100_000;

/// A CSV field, quoted when it needs to be, and never read as a formula by a spreadsheet.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

impl Operator {
    /// The newest `limit` events `filter` selects, newest first.
    pub async fn audit_events(
        &self,
        filter: &AuditFilter,
        limit: u32,
    ) -> OpsResult<Vec<crate::domain::AuditEvent>> {
        let found = self.repos.audit.search(filter, None, limit).await?;
        Ok(found.into_iter().map(|(_, e)| e).collect())
    }

    /// The events `filter` selects, newest first, at most `EXPORT_MAX`, as CSV with a header
    /// line; users by username (their id once deleted), times in RFC 3339.
    pub async fn audit_csv(&self, filter: &AuditFilter) -> OpsResult<String> {
        let names: std::collections::HashMap<String, String> = self
            .repos
            .users
            .list()
            .await?
            .into_iter()
            .map(|u| (u.id, u.username))
            .collect();
        let events = self.repos.audit.search(filter, None, EXPORT_MAX).await?;
        let mut csv = String::from("time,event,outcome,user,client,ip,user_agent,detail\r\n");
        for (_, e) in events {
            let when = time::OffsetDateTime::from_unix_timestamp(e.at)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_else(|| e.at.to_string());
            let who = e
                .user_id
                .as_ref()
                .map(|id| names.get(id).cloned().unwrap_or_else(|| id.clone()))
                .unwrap_or_default();
            let fields = [
                when,
                e.event,
                e.outcome,
                who,
                e.client_id.unwrap_or_default(),
                e.ip.unwrap_or_default(),
                e.user_agent.unwrap_or_default(),
                e.detail.unwrap_or_default(),
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            csv.push_str(&line.join(","));
            csv.push_str("\r\n");
        }
        Ok(csv)
    }
}
