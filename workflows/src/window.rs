//! A sliding window of children for workflow code: at most `width` running at once, the
//! next one started, in order, as soon as any finishes — where chunks of `width` would
//! wait for each chunk's slowest member before starting the next chunk.
//!
//! Deterministic, so it may run in a workflow: the running futures are polled in the order
//! they were started and the first one found ready is taken, so a replay that sees the
//! same completions in the same activations takes them in the same order and issues the
//! same commands. It wakes no task by itself: `futures::stream::FuturesUnordered` would
//! (it re-wakes its own task after polling every member), and the SDK's detector of
//! nondeterministic futures fails a workflow task on such a non-SDK wake.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;

/// Runs `start(item)` for every item, at most `width` (at least 1) at once: the next item
/// starts, in order, as soon as a running one finishes; `finished` gets each output as it
/// finishes.
///
/// After the first error no further item starts; the running ones are awaited (their
/// outputs still go to `finished`, as the rest of a chunk did), then that first error is
/// returned.
pub async fn run_sliding_window<I, Fut, T, E>(
    items: I,
    width: usize,
    mut start: impl FnMut(I::Item) -> Fut,
    mut finished: impl FnMut(T),
) -> Result<(), E>
where
    I: IntoIterator,
    Fut: Future<Output = Result<T, E>>,
{
    let width = width.max(1);
    let mut waiting = items.into_iter();
    let mut running: Vec<Pin<Box<Fut>>> = Vec::with_capacity(width);
    let mut first_error = None;
    loop {
        if first_error.is_none() {
            while running.len() < width {
                let Some(item) = waiting.next() else { break };
                running.push(Box::pin(start(item)));
            }
        }
        if running.is_empty() {
            return first_error.map_or(Ok(()), Err);
        }
        let (index, output) = poll_fn(|cx| {
            running
                .iter_mut()
                .enumerate()
                .find_map(|(i, f)| match f.as_mut().poll(cx) {
                    Poll::Ready(output) => Some((i, output)),
                    Poll::Pending => None,
                })
                .map_or(Poll::Pending, Poll::Ready)
        })
        .await;
        drop(running.remove(index));
        match output {
            Ok(t) => finished(t),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::run_sliding_window;
    use std::cell::RefCell;
    use std::future::Future;
    use std::pin::Pin;
    use std::rc::Rc;
    use std::task::{Context, Poll, Waker};

    /// A future finished by the test ("the child completed"), recording its start.
    #[derive(Clone, Default)]
    struct Gate(Rc<RefCell<Option<Result<u32, String>>>>);

    impl Future for Gate {
        type Output = Result<u32, String>;
        fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
            self.0
                .borrow_mut()
                .take()
                .map_or(Poll::Pending, Poll::Ready)
        }
    }

    /// Drives a window by hand: `gates[i]` is item i's future, completed by the test.
    struct Harness {
        gates: Vec<Gate>,
        started: Rc<RefCell<Vec<usize>>>,
        finished: Rc<RefCell<Vec<u32>>>,
        run: Pin<Box<dyn Future<Output = Result<(), String>>>>,
    }

    impl Harness {
        fn new(items: usize, width: usize) -> Self {
            let gates: Vec<Gate> = (0..items).map(|_| Gate::default()).collect();
            let started = Rc::new(RefCell::new(Vec::new()));
            let finished = Rc::new(RefCell::new(Vec::new()));
            let run = {
                let gates = gates.clone();
                let started = started.clone();
                let finished = finished.clone();
                Box::pin(run_sliding_window(
                    0..items,
                    width,
                    move |i| {
                        started.borrow_mut().push(i);
                        gates[i].clone()
                    },
                    move |n| finished.borrow_mut().push(n),
                ))
            };
            Harness {
                gates,
                started,
                finished,
                run,
            }
        }

        fn poll(&mut self) -> Poll<Result<(), String>> {
            self.run
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
        }

        fn complete(&mut self, i: usize, result: Result<u32, String>) {
            *self.gates[i].0.borrow_mut() = Some(result);
        }

        fn started(&self) -> Vec<usize> {
            self.started.borrow().clone()
        }
    }

    #[test]
    fn a_new_item_starts_as_soon_as_any_running_one_finishes_in_order() {
        let mut h = Harness::new(5, 2);
        assert!(h.poll().is_pending());
        assert_eq!(h.started(), [0, 1]);
        // The second finishes first: the third starts without waiting for the first.
        h.complete(1, Ok(10));
        assert!(h.poll().is_pending());
        assert_eq!(h.started(), [0, 1, 2]);
        h.complete(2, Ok(20));
        assert!(h.poll().is_pending());
        assert_eq!(h.started(), [0, 1, 2, 3]);
        h.complete(0, Ok(0));
        h.complete(3, Ok(30));
        assert!(h.poll().is_pending());
        assert_eq!(h.started(), [0, 1, 2, 3, 4]);
        h.complete(4, Ok(40));
        assert_eq!(h.poll(), Poll::Ready(Ok(())));
        // Completed together, taken in the order they started.
        assert_eq!(*h.finished.borrow(), [10, 20, 0, 30, 40]);
    }

    #[test]
    fn after_the_first_error_nothing_starts_and_the_running_items_are_awaited() {
        let mut h = Harness::new(4, 2);
        assert!(h.poll().is_pending());
        h.complete(0, Err("boom".into()));
        assert!(h.poll().is_pending(), "item 1 is still running");
        assert_eq!(h.started(), [0, 1]);
        h.complete(1, Ok(1));
        assert_eq!(h.poll(), Poll::Ready(Err("boom".into())));
        assert_eq!(h.started(), [0, 1]);
        assert_eq!(*h.finished.borrow(), [1]);
    }

    #[test]
    fn nothing_to_run_is_done_at_once_and_a_width_of_zero_runs_one_at_a_time() {
        let mut empty = Harness::new(0, 3);
        assert_eq!(empty.poll(), Poll::Ready(Ok(())));
        let mut h = Harness::new(2, 0);
        assert!(h.poll().is_pending());
        assert_eq!(h.started(), [0]);
    }
}
