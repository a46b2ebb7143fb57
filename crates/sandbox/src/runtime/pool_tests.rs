//! The pooling allocator is sized for the worst case: every one of the
//! `max_concurrent_calls` slots may hold a component that uses the
//! per-component maximum of memories, tables and core instances, so a greedy
//! connector never exhausts the pool for the others (calls wait for a slot at
//! the semaphore instead of failing at instantiation).

use wasmtime::Store;
use wasmtime::component::{Component, Linker};

use super::*;

/// A component with the per-component maximum of core instances, memories
/// and tables.
fn greedy_component() -> String {
    let mut wat = String::from(
        "(component\n (core module $memory (memory 1))\n (core module $table (table 1 funcref))\n (core module $empty)\n",
    );
    let empty =
        MAX_CORE_INSTANCES_PER_COMPONENT - MAX_MEMORIES_PER_COMPONENT - MAX_TABLES_PER_COMPONENT;
    for (module, count) in [
        ("memory", MAX_MEMORIES_PER_COMPONENT),
        ("table", MAX_TABLES_PER_COMPONENT),
        ("empty", empty),
    ] {
        for i in 0..count {
            wat.push_str(&format!(
                " (core instance ${module}{i} (instantiate ${module}))\n"
            ));
        }
    }
    wat.push(')');
    wat
}

#[test]
fn every_slot_can_hold_a_component_at_the_per_component_maximum() {
    let slots = 3;
    let limits = RuntimeLimits {
        max_concurrent_calls: slots,
        ..RuntimeLimits::default()
    };
    let engine = Engine::new(&engine_config(&limits, true)).unwrap();
    let component = Component::new(&engine, greedy_component()).unwrap();
    let linker = Linker::<()>::new(&engine);
    let mut held = Vec::new();
    for slot in 0..slots {
        let mut store = Store::new(&engine, ());
        linker
            .instantiate(&mut store, &component)
            .unwrap_or_else(|e| panic!("slot {slot} of {slots}: the pool ran out: {e:#}"));
        held.push(store);
    }
    // The pool holds exactly that: one more instance does not fit (the
    // semaphore, with `slots` permits, keeps calls from getting here).
    let mut extra = Store::new(&engine, ());
    assert!(linker.instantiate(&mut extra, &component).is_err());
    // A slot given back is usable again.
    drop(held.pop());
    linker
        .instantiate(&mut extra, &component)
        .expect("a freed slot is reused");
}
