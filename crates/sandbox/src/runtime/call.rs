//! Calling a hook: a fresh store and instance per call, limits armed, the typed
//! outcome and a report of what the guest logged.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use tracing::Instrument;
use wasmtime::{Store, Trap, UpdateDeadline};

use super::bounds::{BoundedOutput, Oversize};
use super::{CallContext, CallError, CallLimiter, CallState, ConnectorRef, Runtime};
use crate::capabilities::http::{ConnectorPolicy, HttpCapability};
use crate::capabilities::{LogCapability, LogLevel, LogLine};
use crate::generated::{self, AuthType, ConnectorError, hooks};
use connector_abi::hook::Hook;

/// What a call left behind besides its result.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CallReport {
    /// Log lines kept (within the per-call budget).
    pub logs: Vec<LogLine>,
    /// Log lines dropped past the budget.
    pub dropped_log_lines: u64,
    /// Bytes of stdout/stderr dropped past the cap.
    pub dropped_output_bytes: u64,
    /// Outbound requests the host refused.
    pub refused_requests: u32,
    /// How long the call took, waiting for a slot included.
    #[serde(skip)]
    pub elapsed: std::time::Duration,
    /// The guest asked for memory beyond its cap and was refused. A Rust
    /// guest then traps; a JavaScript engine survives the refusal and throws
    /// its own "out of memory" error, which [`flatten`] reports as
    /// [`CallError::OutOfMemory`] all the same.
    #[serde(skip)]
    pub memory_cap_hit: bool,
}

/// The result of a hook call with its report.
#[derive(Debug)]
pub struct Outcome<R> {
    /// The hook's value or why there is none.
    pub result: Result<R, CallError>,
    /// Logs and counters of the call.
    pub report: CallReport,
}

type HookFuture<'a, R> = Pin<Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>>;

/// A connector version ready to be called: its linked `InstancePre`, the hooks it
/// implements and the operator's config for it.
pub struct Prepared {
    runtime: Arc<Runtime>,
    connector: Arc<ConnectorRef>,
    pre: generated::ConnectorPre<CallState>,
    hooks: BTreeSet<Hook>,
    config: Arc<BTreeMap<String, String>>,
    policy: Arc<ConnectorPolicy>,
    /// This connector's own slots (see `RuntimeLimits::max_concurrent_calls_per_connector`).
    slots: Arc<tokio::sync::Semaphore>,
    /// This connector's linear-memory cap per call (the runtime's
    /// `memory_bytes` unless the operator set a lower one).
    memory_bytes: usize,
}

impl Prepared {
    /// Wraps a linked component.
    pub fn new(
        runtime: Arc<Runtime>,
        connector: ConnectorRef,
        pre: generated::ConnectorPre<CallState>,
        hooks: BTreeSet<Hook>,
        config: BTreeMap<String, String>,
        policy: ConnectorPolicy,
    ) -> Self {
        let slots = runtime.connector_permits(&connector.id, None);
        let memory_bytes = runtime.limits().memory_bytes;
        Self {
            runtime,
            connector: Arc::new(connector),
            pre,
            hooks,
            config: Arc::new(config),
            policy: Arc::new(policy),
            slots,
            memory_bytes,
        }
    }

    /// Caps this connector's linear memory per call at `bytes` instead of the
    /// runtime's `memory_bytes` (the operator's `[connectors.<id>]
    /// memory_bytes`). The runtime's cap is also the pool's slot size, so a
    /// larger value is lowered to it.
    pub fn with_memory_cap(mut self, bytes: Option<usize>) -> Self {
        if let Some(bytes) = bytes {
            self.memory_bytes = bytes.min(self.runtime.limits().memory_bytes);
        }
        self
    }

    /// This connector's linear-memory cap per call, in bytes.
    pub fn memory_cap(&self) -> usize {
        self.memory_bytes
    }

    /// Gives this connector `slots` concurrent calls instead of the runtime's
    /// default share (the operator's `[connectors.<id>] max_concurrent_calls`).
    pub fn with_slots(mut self, slots: Option<u32>) -> Self {
        if slots.is_some() {
            self.slots = self.runtime.connector_permits(&self.connector.id, slots);
        }
        self
    }

    /// What this connector may reach.
    pub fn policy(&self) -> &ConnectorPolicy {
        &self.policy
    }

    /// The outbound capability of this connector for a request the host sends
    /// itself on a connection's behalf (the proxy route): the same policy,
    /// credential injection and audit as the guest's `http.send`.
    pub fn host_http(&self, ctx: &CallContext, timeout: std::time::Duration) -> HttpCapability {
        HttpCapability::new(
            self.runtime.outbound.clone(),
            self.policy.clone(),
            ctx.credentials.clone(),
            self.connector.clone(),
            ctx.account_id.clone(),
            std::time::Instant::now() + timeout,
        )
    }

    /// Which connector version this is.
    pub fn connector(&self) -> &ConnectorRef {
        &self.connector
    }

    /// Whether the component implements `hook`.
    pub fn implements(&self, hook: Hook) -> bool {
        self.hooks.contains(&hook)
    }

    /// Runs `f` against a fresh instance under the call's limits.
    async fn invoke<R, F>(&self, ctx: &CallContext, hook: Hook, f: F) -> Outcome<R>
    where
        R: Send,
        F: for<'a> FnOnce(&'a generated::Connector, &'a mut Store<CallState>) -> HookFuture<'a, R>
            + Send,
    {
        let connector = (*self.connector).clone();
        if !self.hooks.contains(&hook) {
            return Outcome {
                result: Err(CallError::NotImplemented { connector, hook }),
                report: CallReport::default(),
            };
        }
        let limits = self.runtime.limits();
        let started = Instant::now();
        // The time limit covers waiting for a free slot too: a flood of calls
        // cannot make a caller wait forever.
        let timeout = limits.call_timeout();
        let deadline = Instant::now() + timeout;
        let tokio_deadline = tokio::time::Instant::from_std(deadline);
        // The connector's own slot first, then a global one: a connector whose
        // calls hang waits on its own slots and leaves the others' free.
        let permits = async {
            let own = self.slots.acquire().await;
            let global = self.runtime.permits.acquire().await;
            (own, global)
        };
        let permit = tokio::time::timeout_at(tokio_deadline, permits).await;
        let Ok((own_permit, permit)) = permit else {
            return Outcome {
                result: Err(CallError::Timeout {
                    connector,
                    hook,
                    limit: timeout,
                }),
                report: CallReport::default(),
            };
        };
        let _own_permit = own_permit.expect("connector semaphore is never closed");
        let _permit = permit.expect("call semaphore is never closed");
        let state = CallState::new(
            CallLimiter::new(self.memory_bytes, 100_000),
            LogCapability::new(
                self.connector.clone(),
                limits.log_lines_per_call,
                limits.log_bytes_per_call,
            ),
            self.config.clone(),
            HttpCapability::new(
                self.runtime.outbound.clone(),
                self.policy.clone(),
                ctx.credentials.clone(),
                self.connector.clone(),
                ctx.account_id.clone(),
                deadline,
            )
            .deny_all(ctx.deny_outbound),
            limits.output_bytes_per_call,
        );
        let mut store = Store::new(self.runtime.engine(), state);
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        let span =
            tracing::debug_span!("hook", connector = %connector, %hook, account = ?ctx.account_id);

        let pre = &self.pre;
        let run = async {
            let instance = pre.instantiate_async(&mut store).await?;
            f(&instance, &mut store).await
        };
        let result = match tokio::time::timeout_at(tokio_deadline, run.instrument(span)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(classify(
                error,
                &store,
                &connector,
                hook,
                self.memory_bytes,
                timeout,
            )),
            Err(_) => Err(CallError::Timeout {
                connector: connector.clone(),
                hook,
                limit: timeout,
            }),
        };
        let mut report = finish(&mut store);
        report.elapsed = started.elapsed();
        Outcome { result, report }
    }

    /// Calls the required `auth-type` hook.
    pub async fn auth_type(&self, ctx: &CallContext) -> Outcome<AuthType> {
        self.invoke(ctx, Hook::AuthType, |c, s| {
            Box::pin(c.connector_auth_hooks().call_auth_type(s))
        })
        .await
    }
}

/// Turns a wasmtime error into the typed call error.
fn classify(
    error: wasmtime::Error,
    store: &Store<CallState>,
    connector: &ConnectorRef,
    hook: Hook,
    memory_bytes: usize,
    timeout: std::time::Duration,
) -> CallError {
    let connector = connector.clone();
    if store.data().limiter.hit_memory_limit {
        return CallError::OutOfMemory {
            connector,
            hook,
            limit_bytes: memory_bytes,
        };
    }
    if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
        let message = format!("the guest called exit({})", exit.0);
        return CallError::Trap {
            connector,
            hook,
            message,
        };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => CallError::Timeout {
            connector,
            hook,
            limit: timeout,
        },
        Some(trap) => {
            let (output, _) = store.data().output.peek();
            let mut message = match trap {
                Trap::StackOverflow => {
                    "stack overflow (the wasm call stack is exhausted)".to_string()
                }
                other => other.to_string(),
            };
            // Rust prints `… panicked at file:line:col:` and the message on the next line.
            let lines: Vec<&str> = output.lines().collect();
            if let Some(at) = lines.iter().position(|line| line.contains("panicked")) {
                let panic: Vec<&str> = lines[at..].iter().take(2).map(|l| l.trim()).collect();
                message = format!("{message}; guest {}", panic.join(" "));
            }
            CallError::Trap {
                connector,
                hook,
                message,
            }
        }
        None => CallError::Host {
            connector,
            hook,
            message: format!("{error:#}"),
        },
    }
}

/// Collects logs and guest output after a call, forwarding stdio to the log.
fn finish(store: &mut Store<CallState>) -> CallReport {
    let state = store.data_mut();
    let (output, dropped_output_bytes) = state.output.take();
    for line in output.lines().filter(|l| !l.trim().is_empty()) {
        state.log.record(LogLevel::Info, line);
    }
    let (logs, dropped_log_lines) = state.log.finish();
    CallReport {
        logs,
        dropped_log_lines,
        dropped_output_bytes,
        refused_requests: state.http.refused(),
        elapsed: std::time::Duration::ZERO,
        memory_cap_hit: state.limiter.hit_memory_limit,
    }
}

/// Flattens a guest `result<T, connector-error>` into the call outcome,
/// refusing a value over the caps of [`super::bounds`].
fn flatten<T: BoundedOutput>(
    outcome: Outcome<Result<T, ConnectorError>>,
    connector: &ConnectorRef,
    hook: Hook,
    memory_bytes: usize,
) -> Outcome<T> {
    let result = match outcome.result {
        Ok(Err(_)) if outcome.report.memory_cap_hit => Err(CallError::OutOfMemory {
            connector: connector.clone(),
            hook,
            limit_bytes: memory_bytes,
        }),
        Ok(Ok(value)) => match value.oversize() {
            None => Ok(value),
            Some(Oversize { field, size, limit }) => Err(CallError::OutputTooLarge {
                connector: connector.clone(),
                hook,
                field,
                size,
                limit,
            }),
        },
        Ok(Err(mut error)) => {
            super::bounds::bound_error(&mut error);
            Err(CallError::Guest {
                connector: connector.clone(),
                hook,
                error,
            })
        }
        Err(error) => Err(error),
    };
    let word = match &result {
        Ok(_) => "ok",
        Err(error) => error.kind(),
    };
    super::metrics::hook_call(connector, hook, word, outcome.report.elapsed);
    Outcome {
        result,
        report: outcome.report,
    }
}

macro_rules! fallible_hooks {
    ($($(#[$doc:meta])* $method:ident($input:ty) -> $output:ty => $hook:ident via $call:ident;)*) => {
        impl Prepared {
            $(
                $(#[$doc])*
                pub async fn $method(&self, ctx: &CallContext, input: $input) -> Outcome<$output> {
                    let outcome = self
                        .invoke(ctx, Hook::$hook, move |c, s| {
                            Box::pin(async move { c.connector_auth_hooks().$call(s, &input).await })
                        })
                        .await;
                    flatten(outcome, &self.connector, Hook::$hook, self.memory_bytes)
                }
            )*
        }
    };
}

fallible_hooks! {
    /// `oauth-info` (App Connect `getOauthInfo`).
    oauth_info(hooks::OauthInfoInput) -> hooks::OauthValues => OauthInfo via call_oauth_info;
    /// `overriding-oauth-option` (App Connect `getOverridingOAuthOption`).
    overriding_oauth_option(hooks::OauthValues) -> hooks::TokenRequestOverride => OverridingOauthOption via call_overriding_oauth_option;
    /// `credentials-from-token-response` (Membrane `getCredentialsFromTokenResponse`).
    credentials_from_token_response(hooks::TokenResponseInput) -> Vec<(String, String)> => CredentialsFromTokenResponse via call_credentials_from_token_response;
    /// `user-info` (App Connect `getUserInfo`).
    user_info(hooks::ConnectionInfo) -> hooks::UserIdentity => UserInfo via call_user_info;
    /// `basic-auth` (App Connect `getBasicAuth`).
    basic_auth(hooks::ConnectionInfo) -> hooks::ApiKeyPlacement => BasicAuth via call_basic_auth;
    /// `unauthorize` (App Connect `unAuthorize`).
    unauthorize(hooks::ConnectionInfo) -> Option<String> => Unauthorize via call_unauthorize;
    /// `refresh` (App Connect `checkAndRefreshAccessToken`).
    refresh(hooks::ConnectionInfo) -> hooks::RefreshOverride => Refresh via call_refresh;
    /// `auth-validation` (App Connect `authValidation`).
    auth_validation(hooks::ConnectionInfo) -> hooks::Validation => AuthValidation via call_auth_validation;
    /// `refresh-user-info` (App Connect `refreshUserInfo`).
    refresh_user_info(hooks::ConnectionInfo) -> hooks::UserIdentity => RefreshUserInfo via call_refresh_user_info;
    /// `test-connection` (Membrane `test`).
    test_connection(hooks::ConnectionInfo) -> Option<String> => TestConnection via call_test_connection;
}
