//! Mail: messages rendered from templates (`messages`), an outbox in the database that a
//! background task empties through the configured transport (`transport`), with retries and
//! backoff. Requests only ever queue: a slow or down mail server never delays a page, and a
//! restart loses nothing.

pub mod messages;
pub mod transport;

use crate::clock::Clock;
use crate::crypto::SealingKey;
use crate::domain::{AuditEvent, OutboxMessage};
use crate::store::{Auditor, OutboxRepo, StoreError, StoreResult};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
pub use transport::Mailer;

/// A message ready to send.
#[derive(Clone, Serialize, Deserialize)]
pub struct Outgoing {
    /// The outbox id (file names, logs).
    #[serde(skip)]
    pub id: String,
    #[serde(skip)]
    pub to: String,
    #[serde(skip)]
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("id", &self.id)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Deliveries tried before a message is given up (about a day with the backoff below).
pub const MAX_ATTEMPTS: u32 = 10;
/// Messages one pass of the sender takes.
const BATCH: u32 = 16;
/// How often the sender looks for due messages when nothing wakes it.
const POLL: Duration = Duration::from_secs(1);

/// Seconds until the next attempt after `attempts` failures: 30 s, doubling, at most 4 h.
pub fn backoff(attempts: u32) -> i64 {
    (30_i64 << attempts.saturating_sub(1).min(10)).min(4 * 3600)
}

/// The outbox and the transport behind it.
pub struct Mail {
    outbox: Arc<dyn OutboxRepo>,
    sealing: SealingKey,
    transport: Box<dyn Mailer>,
    clock: Arc<dyn Clock>,
    audit: Auditor,
    wake: tokio::sync::Notify,
}

impl Mail {
    pub fn new(
        outbox: Arc<dyn OutboxRepo>,
        sealing: SealingKey,
        transport: Box<dyn Mailer>,
        clock: Arc<dyn Clock>,
        audit: Auditor,
    ) -> Self {
        Self {
            outbox,
            sealing,
            transport,
            clock,
            audit,
            wake: tokio::sync::Notify::new(),
        }
    }

    pub fn transport_name(&self) -> &'static str {
        self.transport.name()
    }

    /// Queues a message (durably) and wakes the sender.
    pub async fn queue(
        &self,
        to: &str,
        message: messages::Rendered,
        kind: &str,
        user_id: Option<&str>,
    ) -> StoreResult<()> {
        let now = self.clock.now();
        let id = crate::crypto::ordered_id(now).map_err(StoreError::Backend)?;
        let body = serde_json::to_vec(&Outgoing {
            id: String::new(),
            to: String::new(),
            subject: String::new(),
            text: message.text,
            html: message.html,
        })
        .map_err(|e| StoreError::Backend(e.into()))?;
        let sealed_body = self
            .sealing
            .seal(&body, id.as_bytes())
            .map_err(StoreError::Backend)?;
        self.outbox
            .enqueue(&OutboxMessage {
                id,
                recipient: to.to_owned(),
                subject: message.subject,
                sealed_body,
                kind: kind.to_owned(),
                user_id: user_id.map(str::to_owned),
                created_at: now,
                attempts: 0,
                next_attempt_at: now,
            })
            .await?;
        self.wake.notify_one();
        Ok(())
    }

    /// Messages waiting.
    pub async fn depth(&self) -> StoreResult<u64> {
        self.outbox.depth().await
    }

    /// Sends what is due until told to stop; sleeps until woken or a second has passed.
    pub async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.send_due().await {
                tracing::warn!(error = %e, "mail outbox: cannot read due messages");
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// One pass over the due messages; returns how many were sent.
    pub async fn send_due(&self) -> StoreResult<usize> {
        let mut sent = 0;
        loop {
            let due = self.outbox.due(self.clock.now(), BATCH).await?;
            if due.is_empty() {
                return Ok(sent);
            }
            for m in &due {
                if self.send_one(m).await? {
                    sent += 1;
                }
            }
            if due.len() < BATCH as usize {
                return Ok(sent);
            }
        }
    }

    async fn send_one(&self, m: &OutboxMessage) -> StoreResult<bool> {
        let outgoing = self
            .sealing
            .open(&m.sealed_body, m.id.as_bytes())
            .ok()
            .and_then(|b| serde_json::from_slice::<Outgoing>(&b).ok())
            .map(|o| Outgoing {
                id: m.id.clone(),
                to: m.recipient.clone(),
                subject: m.subject.clone(),
                ..o
            });
        let result = match outgoing {
            Some(o) => self.transport.deliver(&o).await,
            None => Err("the body cannot be opened (another secret key?)".into()),
        };
        let now = self.clock.now();
        match result {
            Ok(()) => {
                self.outbox.sent(&m.id, now).await?;
                Ok(true)
            }
            Err(error) => {
                let attempts = m.attempts + 1;
                let give_up = attempts >= MAX_ATTEMPTS;
                tracing::warn!(id = %m.id, kind = %m.kind, attempts, give_up, error = %error, "mail delivery failed");
                self.outbox
                    .failed(&m.id, &error, now + backoff(attempts), give_up, now)
                    .await?;
                self.audit
                    .record(AuditEvent {
                        at: now,
                        event: "mail".into(),
                        user_id: m.user_id.clone(),
                        client_id: None,
                        ip: None,
                        user_agent: None,
                        outcome: "failure".into(),
                        detail: Some(format!(
                            "{} via {}: attempt {attempts}{}: {error}",
                            m.kind,
                            self.transport.name(),
                            if give_up { ", given up" } else { "" }
                        )),
                    })
                    .await;
                Ok(false)
            }
        }
    }
}
