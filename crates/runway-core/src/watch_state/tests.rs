use std::collections::BTreeSet;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::clock::micros_to_timestamp;

const DEBOUNCE: Duration = Duration::from_secs(5);
const COOLDOWN: Duration = Duration::from_secs(180);

fn at(seconds: i64) -> Timestamp {
    micros_to_timestamp(1_700_000_000_000_000 + seconds * 1_000_000)
}

fn paths(names: &[&str]) -> Changed {
    Changed::Paths(names.iter().map(|name| name.to_string()).collect())
}

fn change(name: &str) -> Event {
    Event::Changed(Change::Paths(vec![name.to_string()]))
}

/// Applies `events` in order, each at its second, and returns the last state and every effect.
fn run(events: &[(i64, Event)]) -> (WatchState, Vec<Effect>) {
    let mut state = WatchState::new(DEBOUNCE, COOLDOWN);
    let mut all = Vec::new();
    for (second, event) in events {
        let (next, effects) = state.step(event.clone(), at(*second));
        state = next;
        all.extend(effects);
    }
    (state, all)
}

#[test]
fn a_change_waits_for_the_debounce() {
    let (state, effects) = run(&[(0, change("a.org"))]);
    assert_eq!(
        state.phase,
        Phase::Waiting {
            fire_at: at(5),
            changed: paths(&["a.org"])
        }
    );
    assert_eq!(state.deadline(), Some(at(5)));
    assert!(effects.is_empty());
}

#[test]
fn another_change_restarts_the_countdown_and_adds_its_path() {
    let (state, effects) = run(&[(0, change("a.org")), (3, change("b.org")), (6, Event::Tick)]);
    assert_eq!(state.deadline(), Some(at(8)));
    assert!(effects.is_empty(), "the quiet time starts again at 3s");
    assert_eq!(state.phase.name(), "waiting");
}

#[test]
fn a_quiet_debounce_starts_one_run_with_every_path() {
    let (state, effects) = run(&[(0, change("a.org")), (3, change("b.org")), (8, Event::Tick)]);
    assert_eq!(effects, vec![Effect::Submit(paths(&["a.org", "b.org"]))]);
    assert_eq!(
        state.phase,
        Phase::Running {
            stoked: Changed::Nothing
        }
    );
    assert_eq!(
        state.deadline(),
        None,
        "a run waits for its job, not for time"
    );
}

#[test]
fn a_job_end_starts_the_cooldown_and_a_quiet_cooldown_ends_idle() {
    let (state, _) = run(&[(0, change("a")), (5, Event::Tick), (10, Event::JobEnded)]);
    assert_eq!(state.deadline(), Some(at(190)));
    let (state, effects) = state.step(Event::Tick, at(190));
    assert_eq!(state.phase, Phase::Idle);
    assert!(effects.is_empty());
}

#[test]
fn changes_while_running_stoke_exactly_one_more_run_after_the_cooldown() {
    let (state, effects) = run(&[
        (0, change("a")),
        (5, Event::Tick),
        (6, change("b")),
        (7, change("c")),
        (10, Event::JobEnded),
        (100, change("d")),
    ]);
    assert_eq!(
        effects.len(),
        1,
        "no second run while the first runs or cools down"
    );
    assert_eq!(state.phase.name(), "cooldown");
    let (state, effects) = state.step(Event::Tick, at(190));
    assert_eq!(effects, vec![Effect::Submit(paths(&["b", "c", "d"]))]);
    assert_eq!(state.phase.name(), "running");
}

#[test]
fn a_change_just_before_the_cooldown_ends_still_gets_its_debounce() {
    let (state, _) = run(&[
        (0, change("a")),
        (5, Event::Tick),
        (10, Event::JobEnded),
        (188, change("b")),
        (190, Event::Tick),
    ]);
    assert_eq!(
        state.phase,
        Phase::Waiting {
            fire_at: at(193),
            changed: paths(&["b"])
        }
    );
}

#[test]
fn an_overflow_asks_for_everything_and_swallows_later_paths() {
    let (_, effects) = run(&[
        (0, change("a")),
        (1, Event::Changed(Change::Overflow)),
        (2, change("b")),
        (7, Event::Tick),
    ]);
    assert_eq!(effects, vec![Effect::Submit(Changed::Everything)]);
}

#[test]
fn too_many_paths_become_a_full_rebuild() {
    let many: Vec<String> = (0..=MAX_PATHS).map(|n| format!("{n}.org")).collect();
    let (_, effects) = run(&[(0, Event::Changed(Change::Paths(many))), (5, Event::Tick)]);
    assert_eq!(effects, vec![Effect::Submit(Changed::Everything)]);
}

#[test]
fn a_fire_runs_now_when_idle_and_after_the_run_when_running() {
    let (state, effects) = run(&[(0, Event::Fire)]);
    assert_eq!(effects, vec![Effect::Submit(Changed::Everything)]);
    let (state, effects) = state.step(Event::Fire, at(1));
    assert!(effects.is_empty(), "never two runs at once");
    let (state, effects) = state.step(Event::JobEnded, at(2));
    assert!(effects.is_empty(), "the fire waits for the cooldown");
    assert_eq!(state.deadline(), Some(at(182)));
}

#[test]
fn a_fire_in_cooldown_ends_it() {
    let (state, _) = run(&[(0, change("a")), (5, Event::Tick), (6, Event::JobEnded)]);
    let (state, effects) = state.step(Event::Fire, at(7));
    assert_eq!(effects, vec![Effect::Submit(Changed::Everything)]);
    assert_eq!(state.phase.name(), "running");
}

#[test]
fn a_paused_trigger_gathers_changes_and_runs_them_on_resume() {
    let (state, effects) = run(&[
        (0, Event::Pause),
        (1, change("a")),
        (10, Event::Tick),
        (20, change("b")),
    ]);
    assert!(effects.is_empty());
    assert_eq!(state.deadline(), None, "a paused trigger waits for no time");
    let (state, effects) = state.step(Event::Resume, at(30));
    assert_eq!(effects, vec![Effect::Submit(paths(&["a", "b"]))]);
    assert_eq!(state.phase.name(), "running");
}

#[test]
fn a_job_end_without_a_run_changes_nothing() {
    let (state, effects) = run(&[(0, change("a")), (1, Event::JobEnded)]);
    assert_eq!(state.phase.name(), "waiting");
    assert!(effects.is_empty());
}

/// One step of a generated history: time passes, then something happens.
#[derive(Debug, Clone)]
enum Action {
    Change(u8),
    Overflow,
    JobEnds,
    Fire,
    Pause,
    Resume,
}

fn action() -> impl Strategy<Value = (u32, Action)> {
    let what = prop_oneof![
        6 => (0u8..6).prop_map(Action::Change),
        1 => Just(Action::Overflow),
        4 => Just(Action::JobEnds),
        1 => Just(Action::Fire),
        1 => Just(Action::Pause),
        1 => Just(Action::Resume),
    ];
    (0u32..400_000, what)
}

/// A driver as the server's: ticks at every deadline, ends a job only while one runs. Checks
/// that no run starts while another runs, and returns every change (its order and path, `None`
/// for an overflow) and every run (its order and what it listed).
struct Driver {
    state: WatchState,
    now: Timestamp,
    order: usize,
    running: bool,
    changes: Vec<(usize, Option<String>)>,
    runs: Vec<(usize, Changed)>,
}

impl Driver {
    fn apply(&mut self, event: Event) {
        self.order += 1;
        let (state, effects) = self.state.clone().step(event, self.now);
        self.state = state;
        for Effect::Submit(changed) in effects {
            assert!(!self.running, "a run started while another ran");
            self.running = true;
            self.runs.push((self.order, changed));
        }
    }

    /// Lets `millis` pass, ticking at each deadline on the way.
    fn wait(&mut self, millis: u32) {
        let until = self.now + chrono::Duration::milliseconds(i64::from(millis));
        while let Some(deadline) = self.state.deadline()
            && deadline <= until
        {
            self.now = self.now.max(deadline);
            self.apply(Event::Tick);
            assert!(
                self.state.deadline() != Some(deadline),
                "a tick at its deadline must move the trigger on: {:?}",
                self.state
            );
        }
        self.now = until;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_change_is_followed_by_a_run_after_it_and_runs_never_overlap(
        actions in proptest::collection::vec(action(), 0..60)
    ) {
        let mut driver = Driver {
            state: WatchState::new(DEBOUNCE, COOLDOWN),
            now: at(0),
            order: 0,
            running: false,
            changes: Vec::new(),
            runs: Vec::new(),
        };
        for (millis, action) in actions {
            driver.wait(millis);
            match action {
                Action::Change(n) => {
                    let path = format!("{n}.org");
                    driver.changes.push((driver.order + 1, Some(path.clone())));
                    driver.apply(Event::Changed(Change::Paths(vec![path])));
                }
                Action::Overflow => {
                    driver.changes.push((driver.order + 1, None));
                    driver.apply(Event::Changed(Change::Overflow));
                }
                Action::JobEnds if driver.running => {
                    driver.running = false;
                    driver.apply(Event::JobEnded);
                }
                Action::JobEnds => {}
                Action::Fire => driver.apply(Event::Fire),
                Action::Pause => driver.apply(Event::Pause),
                Action::Resume => driver.apply(Event::Resume),
            }
        }
        // Then the world settles: the trigger is resumed and every job ends.
        driver.apply(Event::Resume);
        for _ in 0..10 {
            if driver.running {
                driver.wait(1);
                driver.running = false;
                driver.apply(Event::JobEnded);
            }
            driver.wait(1_000_000);
        }
        prop_assert!(!driver.running && driver.state.phase == Phase::Idle, "{:?}", driver.state);
        for (when, path) in &driver.changes {
            let covered = driver.runs.iter().any(|(started, changed)| {
                started > when
                    && match (changed, path) {
                        (Changed::Everything, _) => true,
                        (Changed::Paths(listed), Some(path)) => listed.contains(path),
                        _ => false,
                    }
            });
            prop_assert!(covered, "change {:?} at {} has no run after it: {:?}", path, when, driver.runs);
        }
    }
}

#[test]
fn gathered_paths_are_sorted_and_unique() {
    let mut changed = Changed::Nothing;
    changed.add(&Change::Paths(vec!["b".into(), "a".into()]));
    changed.add(&Change::Paths(vec!["a".into()]));
    assert_eq!(
        changed,
        Changed::Paths(BTreeSet::from(["a".to_string(), "b".to_string()]))
    );
}
