//! The state machine of a file-watch trigger, as a pure function: what the trigger does when a
//! watched file changes, when time passes and when its job ends. The file-system watcher, the
//! clock and the job submission live elsewhere and only feed events in and carry effects out,
//! so every rule below is tested without a file system or a clock.
//!
//! ```text
//! idle --change--> waiting --quiet for `debounce`--> running --job ended--> cooldown --`cooldown` passed--> idle
//!                    ^ a change restarts the countdown        a change while running or in cooldown
//!                                                             "stokes" exactly one more run
//! ```
//!
//! Two promises hold for any sequence of events (see the property tests): every change is
//! followed by a run that starts after it and lists its path, and no two runs of a trigger
//! overlap.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::clock::Timestamp;

/// Paths gathered for one run past this many are dropped for a full rebuild: a run that lists
/// them all would carry a huge input, and its command has to look at everything anyway.
pub const MAX_PATHS: usize = 10_000;

/// What changed since the last run started: paths relative to the watched root, or too many
/// (or an overflow of the OS's event queue), which asks for a full rebuild.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Changed {
    #[default]
    Nothing,
    Paths(BTreeSet<String>),
    Everything,
}

impl Changed {
    /// A run's input: the changed paths, or `null` with `overflow` when they are not known (the
    /// OS dropped events, too many changed, or someone asked for a run) and everything should
    /// be looked at.
    pub fn input(&self, trigger: &str) -> Value {
        match self {
            Changed::Paths(paths) => json!({"trigger": trigger, "paths": paths}),
            Changed::Everything | Changed::Nothing => {
                json!({"trigger": trigger, "paths": null, "overflow": true})
            }
        }
    }

    fn add(&mut self, change: &Change) {
        match change {
            Change::Overflow => *self = Changed::Everything,
            Change::Paths(paths) => match self {
                Changed::Everything => {}
                Changed::Nothing => {
                    *self = Changed::Paths(BTreeSet::new());
                    self.add(change);
                }
                Changed::Paths(gathered) => {
                    gathered.extend(paths.iter().cloned());
                    if gathered.len() > MAX_PATHS {
                        *self = Changed::Everything;
                    }
                }
            },
        }
    }

    fn is_nothing(&self) -> bool {
        *self == Changed::Nothing
    }
}

/// What the watcher saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Paths relative to the watched root that were created, written, renamed or deleted.
    Paths(Vec<String>),
    /// The OS dropped events: anything may have changed.
    Overflow,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Changed(Change),
    /// Time passed: the driver sends it at [`WatchState::deadline`].
    Tick,
    /// The run this trigger started ended, however it ended.
    JobEnded,
    /// Someone asked for a run now (`fire`): as if the debounce had just passed.
    Fire,
    Pause,
    Resume,
}

/// Where a trigger stands. `stoked` holds the changes seen since its current run started: a
/// non-empty one means exactly one more run once the cooldown ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Idle,
    /// Changes are gathering; the run starts at `fire_at` unless another change comes first.
    Waiting {
        fire_at: Timestamp,
        changed: Changed,
    },
    Running {
        stoked: Changed,
    },
    Cooldown {
        until: Timestamp,
        stoked: Changed,
    },
}

impl Phase {
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Waiting { .. } => "waiting",
            Phase::Running { .. } => "running",
            Phase::Cooldown { .. } => "cooldown",
        }
    }
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Submit the trigger's job for these changes; report its end as [`Event::JobEnded`].
    Submit(Changed),
}

/// A watch trigger's state, with its timing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchState {
    pub phase: Phase,
    /// A paused trigger gathers changes (and a fire) but starts no run until resumed.
    pub paused: bool,
    pub debounce: Duration,
    pub cooldown: Duration,
    /// When the last change arrived: a stoked run waits for the debounce after it.
    pub last_change: Option<Timestamp>,
}

impl WatchState {
    pub fn new(debounce: Duration, cooldown: Duration) -> WatchState {
        WatchState {
            phase: Phase::Idle,
            paused: false,
            debounce,
            cooldown,
            last_change: None,
        }
    }

    /// When the driver must send [`Event::Tick`] next, if the trigger waits for time.
    pub fn deadline(&self) -> Option<Timestamp> {
        match &self.phase {
            Phase::Waiting { fire_at, .. } if !self.paused => Some(*fire_at),
            Phase::Cooldown { until, .. } => Some(*until),
            _ => None,
        }
    }

    /// Applies `event` at `now`: the next state and what to do.
    pub fn step(mut self, event: Event, now: Timestamp) -> (WatchState, Vec<Effect>) {
        let mut effects = Vec::new();
        match event {
            Event::Changed(change) => {
                self.last_change = Some(now);
                let fire_at = now + self.debounce;
                self.phase = match self.phase {
                    Phase::Idle => {
                        let mut changed = Changed::Nothing;
                        changed.add(&change);
                        Phase::Waiting { fire_at, changed }
                    }
                    Phase::Waiting { mut changed, .. } => {
                        changed.add(&change);
                        Phase::Waiting { fire_at, changed }
                    }
                    Phase::Running { mut stoked } => {
                        stoked.add(&change);
                        Phase::Running { stoked }
                    }
                    Phase::Cooldown { until, mut stoked } => {
                        stoked.add(&change);
                        Phase::Cooldown { until, stoked }
                    }
                };
            }
            Event::Tick => self.pass_time(now, &mut effects),
            Event::JobEnded => {
                if let Phase::Running { stoked } = self.phase {
                    self.phase = Phase::Cooldown {
                        until: now + self.cooldown,
                        stoked,
                    };
                    self.pass_time(now, &mut effects);
                }
            }
            Event::Fire => {
                self.phase = match self.phase {
                    Phase::Idle => Phase::Waiting {
                        fire_at: now,
                        changed: Changed::Everything,
                    },
                    Phase::Waiting { changed, .. } => Phase::Waiting {
                        fire_at: now,
                        changed,
                    },
                    Phase::Running { mut stoked } => {
                        stoked.add(&Change::Overflow);
                        Phase::Running { stoked }
                    }
                    Phase::Cooldown { mut stoked, .. } => {
                        // A fire ends the cooldown: the next run starts now.
                        stoked.add(&Change::Overflow);
                        Phase::Cooldown { until: now, stoked }
                    }
                };
                self.last_change = None;
                self.pass_time(now, &mut effects);
            }
            Event::Pause => self.paused = true,
            Event::Resume => {
                self.paused = false;
                self.pass_time(now, &mut effects);
            }
        }
        (self, effects)
    }

    /// Moves on whatever is due at `now`: a debounce that passed starts the run, a cooldown
    /// that passed ends in idle or, stoked, in the one more run (after the debounce of its
    /// last change).
    fn pass_time(&mut self, now: Timestamp, effects: &mut Vec<Effect>) {
        if let Phase::Cooldown { until, stoked } = &mut self.phase
            && now >= *until
        {
            let stoked = std::mem::take(stoked);
            self.phase = if stoked.is_nothing() {
                Phase::Idle
            } else {
                let quiet_from = self.last_change.map_or(now, |last| last + self.debounce);
                Phase::Waiting {
                    fire_at: quiet_from.max(now),
                    changed: stoked,
                }
            };
        }
        if self.paused {
            return;
        }
        if let Phase::Waiting { fire_at, changed } = &mut self.phase
            && now >= *fire_at
        {
            effects.push(Effect::Submit(std::mem::take(changed)));
            self.phase = Phase::Running {
                stoked: Changed::Nothing,
            };
        }
    }
}

#[cfg(test)]
mod tests;
