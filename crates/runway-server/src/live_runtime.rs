//! The runtime the live layer runs on: the fan-out task and every WebSocket's work (writing
//! frames, catching up, answering a session). Its threads run at a lower CPU priority than the
//! engine's, so when watching and running compete for the cores, a burst of jobs is run first
//! and shown right after, instead of both slowing down together.

use std::future::Future;
use std::sync::Arc;

use thread_priority::{ThreadPriority, ThreadPriorityValue, set_current_thread_priority};
use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;

/// The nice value of the live threads (the engine's are 0). At 10, a live thread gets about a
/// tenth of what a busy engine thread gets when both want the same core, and everything when
/// the engine is idle.
pub const LIVE_NICE: i32 = 10;

/// Cheap to clone; the runtime stops when the last clone is dropped.
#[derive(Clone)]
pub struct LiveRuntime {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: Option<Runtime>,
    handle: Handle,
}

impl LiveRuntime {
    /// One worker per core, each lowering its own priority as it starts; a system that refuses
    /// (no permission to change it) keeps the default priority and says so once per thread.
    pub fn start() -> std::io::Result<LiveRuntime> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("runway-live")
            .enable_all()
            .on_thread_start(lower_priority)
            .build()?;
        let handle = runtime.handle().clone();
        Ok(LiveRuntime {
            inner: Arc::new(Inner {
                runtime: Some(runtime),
                handle,
            }),
        })
    }

    /// Runs `future` on the live threads; the returned handle may be awaited from any runtime.
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.handle.spawn(future)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropped from async code too (the last handler to finish): never block there.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The value `thread_priority` maps to `LIVE_NICE` on its 0..=99 scale (99 is nice -20, 0 is
/// nice 19).
const LIVE_PRIORITY: u8 = 22;

fn lower_priority() {
    let priority = ThreadPriorityValue::try_from(LIVE_PRIORITY).expect("22 is on the 0..=99 scale");
    if let Err(error) = set_current_thread_priority(ThreadPriority::Crossplatform(priority)) {
        tracing::warn!(%error, "a live thread keeps the default CPU priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nice value of the calling thread, as the kernel reports it.
    fn current_nice() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("procfs is mounted");
        // The fields after the command name (which may hold spaces) start at field 3; nice is
        // field 19.
        let after_name = &stat[stat.rfind(')').expect("a stat line names its command") + 2..];
        after_name
            .split(' ')
            .nth(16)
            .expect("stat has a nice field")
            .parse()
            .expect("nice is a number")
    }

    #[test]
    fn live_threads_run_at_the_lower_priority() {
        let live = LiveRuntime::start().expect("the runtime starts");
        let on_live_thread = live.spawn(async { current_nice() });
        let live_nice = live
            .inner
            .handle
            .block_on(on_live_thread)
            .expect("the task ends");
        assert_eq!(
            current_nice(),
            0,
            "the test itself runs at the default priority"
        );
        assert_eq!(live_nice, LIVE_NICE);
    }
}
