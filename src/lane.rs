//! Lanes: the data plane runs on one thread per CPU, each with an event loop of its own
//! (README, "Threads"). A request, its connection and the connection to its bucket stay on
//! one lane, so that no request or chunk is handed from one thread to another on its way.
//! This module only says which lane the calling thread is: the server enters a lane when it
//! starts the lane's thread, and whatever keeps something per lane (the pools of
//! connections to buckets) asks.

use std::cell::Cell;

thread_local! {
    static LANE: Cell<usize> = const { Cell::new(0) };
}

/// Marks the calling thread as lane `index` (counted from 0) for the rest of its life.
pub fn enter(index: usize) {
    LANE.with(|lane| lane.set(index));
}

/// The calling thread's lane; 0 for a thread that never entered one (the main runtime's
/// workers, tests).
pub fn current() -> usize {
    LANE.with(Cell::get)
}

/// Which of `count` per-lane things the calling thread uses: its own when there is one for
/// every lane, else a lane's by wrapping around.
pub fn pick(count: usize) -> usize {
    current() % count.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_is_lane_zero_until_it_enters_one_and_keeps_it_to_itself() {
        assert_eq!(current(), 0);
        let other = std::thread::spawn(|| {
            enter(3);
            (current(), pick(2), pick(8), pick(0))
        })
        .join()
        .unwrap();
        assert_eq!(other, (3, 1, 3, 0));
        assert_eq!(current(), 0, "another thread's lane is its own");
    }
}
