//! Property tests with a small hand-rolled generator (seeded; a failure prints its seed):
//! random DAGs executed and completed in random valid orders through the orchestrator — the
//! ready frontier never holds a subtask with an incomplete dependency, it is exactly the
//! not-started subtasks whose dependencies are completed, and every subtask becomes ready
//! exactly once; the pure graph algorithms against brute-force oracles.

mod common;

use std::collections::BTreeSet;

use common::*;
use orchestra_tasks::graph;
use serde_json::{json, Value};

const CASES: u64 = 120;

/// A random DAG on `n` nodes with node labels shuffled, so plan order is not a topological
/// order: `deps[i]` ⊂ nodes.
fn random_dag(rng: &mut Rng, n: usize) -> Vec<Vec<usize>> {
    let mut label: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut label);
    let density = 5 + rng.below(40) as u64;
    let mut deps = vec![Vec::new(); n];
    for i in 0..n {
        for j in 0..i {
            if rng.chance(density) {
                deps[label[i]].push(label[j]);
            }
        }
    }
    deps
}

fn plan_args(deps: &[Vec<usize>]) -> Value {
    let subtasks: Vec<Value> = deps
        .iter()
        .enumerate()
        .map(|(i, d)| json!({ "title": format!("t{i}"), "specialist": "implementer", "depends_on": d }))
        .collect();
    json!({ "description": "random", "subtasks": subtasks })
}

fn index_of(id: &str) -> usize {
    id.rsplit_once('.').unwrap().1.parse().unwrap()
}

#[test]
fn random_dags_complete_in_random_orders_with_a_sound_frontier() {
    for seed in 1..=CASES {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let n = 1 + rng.below(30);
        let deps = random_dag(&mut rng, n);
        let clock = Clock::at(1_000);
        let o = orchestrator(&clock);
        let env = FakeEnv::standard();
        let (_, planned) = ok(&o, &env, "s", "orchestrator_plan_task", plan_args(&deps));
        let ids: Vec<String> = common::ids(&planned["subtasks"]);
        let mut became_ready: Vec<usize> = vec![0; n];
        let mut completed: BTreeSet<usize> = BTreeSet::new();
        let mut running: Vec<usize> = Vec::new();
        let expected_frontier =
            |completed: &BTreeSet<usize>, running: &[usize]| -> BTreeSet<usize> {
                (0..n)
                    .filter(|i| !completed.contains(i) && !running.contains(i))
                    .filter(|&i| deps[i].iter().all(|d| completed.contains(d)))
                    .collect()
            };
        let check = |ready: &Value, completed: &BTreeSet<usize>, running: &[usize], what: &str| {
            let got: BTreeSet<usize> = common::ids(ready).iter().map(|id| index_of(id)).collect();
            for &r in &got {
                assert!(
                    deps[r].iter().all(|d| completed.contains(d)),
                    "seed {seed}: {what}: ready t{r} has an incomplete dependency"
                );
            }
            assert_eq!(
                got,
                expected_frontier(completed, running),
                "seed {seed}: {what}"
            );
        };
        check(&planned["ready"], &completed, &running, "plan");
        for r in common::ids(&planned["ready"]) {
            became_ready[index_of(&r)] += 1;
        }
        while completed.len() < n {
            let frontier: Vec<usize> = expected_frontier(&completed, &running)
                .into_iter()
                .collect();
            // A subtask that is not ready is refused.
            if let Some(&waiting) = (0..n)
                .filter(|i| !completed.contains(i) && !running.contains(i) && !frontier.contains(i))
                .collect::<Vec<_>>()
                .first()
            {
                refused(
                    &o,
                    &env,
                    "s",
                    "orchestrator_execute_subtask",
                    json!({ "subtask_id": ids[waiting] }),
                );
            }
            let start = !frontier.is_empty() && (running.is_empty() || rng.chance(50));
            clock.set(clock.now() + 1);
            if start {
                let pick = frontier[rng.below(frontier.len())];
                ok(
                    &o,
                    &env,
                    "s",
                    "orchestrator_execute_subtask",
                    json!({ "subtask_id": ids[pick] }),
                );
                running.push(pick);
            } else {
                let k = rng.below(running.len());
                let done = running.swap_remove(k);
                let (_, r) = ok(
                    &o,
                    &env,
                    "s",
                    "orchestrator_complete_subtask",
                    json!({ "subtask_id": ids[done], "results": "r", "next_action": "continue" }),
                );
                completed.insert(done);
                check(&r["ready"], &completed, &running, "complete");
                for id in r["newly_ready"].as_array().unwrap() {
                    let i = index_of(id.as_str().unwrap());
                    became_ready[i] += 1;
                }
                let expected_status = if completed.len() == n {
                    "completed"
                } else {
                    "open"
                };
                assert_eq!(r["plan_status"], expected_status, "seed {seed}");
            }
        }
        assert!(
            became_ready.iter().all(|&c| c == 1),
            "seed {seed}: became ready {became_ready:?} times"
        );
        assert!(
            !env.is_watched("s"),
            "seed {seed}: executes nothing at the end"
        );
    }
}

/// Brute force: is `deps` acyclic (depth-first colouring, recursive — small graphs only)?
fn acyclic(deps: &[Vec<usize>]) -> bool {
    fn visit(v: usize, deps: &[Vec<usize>], colour: &mut [u8]) -> bool {
        match colour[v] {
            1 => return false,
            2 => return true,
            _ => {}
        }
        colour[v] = 1;
        let ok = deps[v].iter().all(|&w| visit(w, deps, colour));
        colour[v] = 2;
        ok
    }
    let mut colour = vec![0u8; deps.len()];
    (0..deps.len()).all(|v| visit(v, deps, &mut colour))
}

#[test]
fn graph_algorithms_agree_with_brute_force() {
    for seed in 1..=CASES * 10 {
        let mut rng = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1);
        let n = 1 + rng.below(25);
        let mut deps = random_dag(&mut rng, n);
        // Half the graphs get random extra edges, which may close cycles.
        if rng.chance(50) {
            for _ in 0..rng.below(4) {
                let (a, b) = (rng.below(n), rng.below(n));
                if !deps[a].contains(&b) {
                    deps[a].push(b);
                }
            }
        }
        let order = graph::topo_order(&deps);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            (0..n).collect::<Vec<_>>(),
            "seed {seed}: a permutation"
        );
        let cycles = graph::cycles(&deps);
        assert_eq!(cycles.is_empty(), acyclic(&deps), "seed {seed}: {deps:?}");
        if cycles.is_empty() {
            let pos: Vec<usize> = {
                let mut p = vec![0; n];
                for (k, &v) in order.iter().enumerate() {
                    p[v] = k;
                }
                p
            };
            for (v, d) in deps.iter().enumerate() {
                assert!(
                    d.iter().all(|&w| pos[w] < pos[v]),
                    "seed {seed}: order puts a dependency later"
                );
            }
        }
        for c in &cycles {
            for k in 0..c.len() {
                let (a, b) = (c[k], c[(k + 1) % c.len()]);
                assert!(
                    deps[a].contains(&b),
                    "seed {seed}: {c:?} is not a cycle of {deps:?}"
                );
            }
            let distinct: BTreeSet<_> = c.iter().collect();
            assert_eq!(distinct.len(), c.len(), "seed {seed}: a simple cycle");
        }
    }
}

#[test]
fn planted_cycles_are_rejected_naming_a_real_cycle() {
    for seed in 1..=CASES {
        let mut rng = Rng(seed.wrapping_mul(0x1234_5678_9abc_def1) | 1);
        let n = 2 + rng.below(20);
        let mut deps = random_dag(&mut rng, n);
        // Close a cycle along a path: pick a node with a dependency and make that
        // dependency depend back on it.
        let Some(a) = (0..n).find(|&i| !deps[i].is_empty()) else {
            continue;
        };
        let b = deps[a][0];
        deps[b].push(a);
        let o = orchestrator(&Clock::at(1));
        let env = FakeEnv::standard();
        let msg = refused(&o, &env, "s", "orchestrator_plan_task", plan_args(&deps));
        let line = msg
            .lines()
            .find(|l| l.contains("dependency cycle:"))
            .unwrap_or_else(|| panic!("seed {seed}: {msg}"));
        let names: Vec<usize> = line
            .split("dependency cycle: ")
            .nth(1)
            .unwrap()
            .split(" → ")
            .map(|t| t.trim_matches('"').trim_start_matches('t').parse().unwrap())
            .collect();
        assert_eq!(names.first(), names.last(), "seed {seed}: closes");
        for w in names.windows(2) {
            assert!(
                deps[w[0]].contains(&w[1]),
                "seed {seed}: t{} does not depend on t{}: {line}",
                w[0],
                w[1]
            );
        }
    }
}
