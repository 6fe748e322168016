//! Pure dependency-graph algorithms over adjacency lists (`deps[i]` = what `i` depends on).
//! No plan, no store: the property tests drive these directly.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Every node after its dependencies; among nodes free at the same time, the lowest index
/// first (so plan order is kept where the graph allows). Nodes on a cycle — which a compiled
/// plan never has — come last, in index order, so nothing is ever dropped.
pub fn topo_order<D: AsRef<[usize]>>(deps: &[D]) -> Vec<usize> {
    let n = deps.len();
    let dependents = dependents(deps);
    let mut waiting: Vec<usize> = deps.iter().map(|d| d.as_ref().len()).collect();
    let mut free: BinaryHeap<Reverse<usize>> =
        (0..n).filter(|&i| waiting[i] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(n);
    let mut placed = vec![false; n];
    while let Some(Reverse(i)) = free.pop() {
        order.push(i);
        placed[i] = true;
        for &j in &dependents[i] {
            waiting[j] -= 1;
            if waiting[j] == 0 {
                free.push(Reverse(j));
            }
        }
    }
    order.extend((0..n).filter(|&i| !placed[i]));
    order
}

/// `dependents[i]` = the nodes that depend on `i` (ascending).
pub fn dependents<D: AsRef<[usize]>>(deps: &[D]) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new(); deps.len()];
    for (i, d) in deps.iter().enumerate() {
        for &j in d.as_ref() {
            out[j].push(i);
        }
    }
    out
}

/// Every cycle's nodes, one cycle per strongly connected component that has one, each in
/// dependency order (`a` depends on `b` depends on … depends on `a`), starting at its lowest
/// index; components in ascending order of that index.
pub fn cycles<D: AsRef<[usize]>>(deps: &[D]) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = strongly_connected(deps)
        .into_iter()
        .filter(|c| c.len() > 1 || deps[c[0]].as_ref().contains(&c[0]))
        .map(|c| cycle_within(deps, &c))
        .collect();
    out.sort_by_key(|c| c[0]);
    out
}

/// Tarjan's algorithm, iterative (plans may be deep enough to overflow a recursive one).
fn strongly_connected<D: AsRef<[usize]>>(deps: &[D]) -> Vec<Vec<usize>> {
    const UNSEEN: usize = usize::MAX;
    let n = deps.len();
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut components = Vec::new();
    let mut next = 0;
    // (node, position of the next edge to look at)
    let mut call: Vec<(usize, usize)> = Vec::new();
    for root in 0..n {
        if index[root] != UNSEEN {
            continue;
        }
        call.push((root, 0));
        while let Some(&mut (v, ref mut edge)) = call.last_mut() {
            if *edge == 0 && index[v] == UNSEEN {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            let edges = deps[v].as_ref();
            if let Some(&w) = edges.get(*edge) {
                *edge += 1;
                if index[w] == UNSEEN {
                    call.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            call.pop();
            if let Some(&(parent, _)) = call.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                component.sort_unstable();
                components.push(component);
            }
        }
    }
    components
}

/// A shortest cycle through the lowest node of a strongly connected component (breadth-first
/// over edges that stay inside it).
fn cycle_within<D: AsRef<[usize]>>(deps: &[D], component: &[usize]) -> Vec<usize> {
    let start = component[0];
    let inside = |v: usize| component.binary_search(&v).is_ok();
    let mut came_from = std::collections::HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for &w in deps[v].as_ref() {
            if w == start {
                let mut path = vec![v];
                let mut at = v;
                while at != start {
                    at = came_from[&at];
                    path.push(at);
                }
                path.reverse();
                return path;
            }
            if inside(w) && w != start && !came_from.contains_key(&w) {
                came_from.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    vec![start] // unreachable for a real component; harmless
}

/// The nodes of `members` that no other member depends on (a stream's last subtasks).
pub fn sinks<D: AsRef<[usize]>>(deps: &[D], members: &[usize]) -> Vec<usize> {
    members
        .iter()
        .copied()
        .filter(|&m| {
            !members
                .iter()
                .any(|&o| o != m && deps[o].as_ref().contains(&m))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topo_order_keeps_plan_order_where_free() {
        // 0 depends on 2; 1 free; 2 free.
        let deps: Vec<Vec<usize>> = vec![vec![2], vec![], vec![]];
        assert_eq!(topo_order(&deps), vec![1, 2, 0]);
    }

    #[test]
    fn cycles_are_found_and_ordered_by_dependency() {
        // 0 → 1 → 2 → 0, 3 → 3, 4 free, 5 → 4.
        let deps: Vec<Vec<usize>> = vec![vec![1], vec![2], vec![0], vec![3], vec![], vec![4]];
        assert_eq!(cycles(&deps), vec![vec![0, 1, 2], vec![3]]);
        let acyclic: Vec<Vec<usize>> = vec![vec![], vec![0], vec![0, 1]];
        assert!(cycles(&acyclic).is_empty());
    }

    #[test]
    fn a_deep_chain_does_not_overflow() {
        let n = 200_000;
        let deps: Vec<Vec<usize>> = (0..n)
            .map(|i| if i == 0 { vec![n - 1] } else { vec![i - 1] })
            .collect();
        assert_eq!(cycles(&deps)[0].len(), n);
        let chain: Vec<Vec<usize>> = (0..n)
            .map(|i| if i == 0 { vec![] } else { vec![i - 1] })
            .collect();
        assert!(cycles(&chain).is_empty());
        assert_eq!(topo_order(&chain), (0..n).collect::<Vec<_>>());
    }

    #[test]
    fn sinks_are_the_members_nothing_in_the_group_waits_for() {
        let deps: Vec<Vec<usize>> = vec![vec![], vec![0], vec![1], vec![0]];
        assert_eq!(sinks(&deps, &[0, 1, 2]), vec![2]);
        assert_eq!(sinks(&deps, &[0, 1, 2, 3]), vec![2, 3]);
    }
}
