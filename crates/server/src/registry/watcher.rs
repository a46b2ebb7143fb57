//! Hot reload: watch the plugins folder (inotify & co. through `notify`, plus a
//! slow poll as a safety net for filesystems that drop events) and sync the
//! registry when it changes.

use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

use super::Registry;

/// Quiet period after a change before syncing, so a burst of events (a copy in
/// progress) causes one reload.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// Poll interval when no events arrive.
const POLL: Duration = Duration::from_millis(1000);

/// Keeps the watcher alive; dropping it stops hot reload.
pub struct WatchHandle {
    task: tokio::task::JoinHandle<()>,
    _watcher: Option<notify::RecommendedWatcher>,
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Registry {
    /// Starts watching the folder. Call [`Registry::sync`] first for the initial
    /// load; this handles later changes.
    pub fn watch(self: &Arc<Self>) -> WatchHandle {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(16);
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok() {
                let _ = tx.try_send(());
            }
        })
        .and_then(|mut watcher| {
            watcher.watch(self.dir(), RecursiveMode::NonRecursive)?;
            Ok(watcher)
        });
        let watcher = match watcher {
            Ok(watcher) => Some(watcher),
            Err(error) => {
                tracing::warn!(%error, dir = %self.dir().display(), "file events unavailable; polling only");
                None
            }
        };
        let registry = self.clone();
        let task = tokio::spawn(async move {
            let mut poll = tokio::time::interval(POLL);
            poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    Some(()) = rx.recv() => {
                        // Let the burst settle, then drain what queued meanwhile.
                        tokio::time::sleep(DEBOUNCE).await;
                        while rx.try_recv().is_ok() {}
                    }
                    _ = poll.tick() => {}
                }
                registry.sync().await;
            }
        });
        WatchHandle {
            task,
            _watcher: watcher,
        }
    }
}
