//! The probe's case table: unique names, at least 40 cases, and every model side
//! runs (without root and without touching the live kernel).

#[cfg(target_os = "linux")]
#[test]
fn every_case_has_a_unique_name_and_a_model_prediction() {
    let env = pinlab_probe::cases::Env {
        root: true,
        dir: std::env::temp_dir(),
    };
    let cases = pinlab_probe::cases::all();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut names: Vec<&str> = cases.iter().map(|c| c.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "duplicate case names");
    for c in &cases {
        let m = (c.model)(&env);
        assert!(
            !m.is_empty() && !m.contains("failed in the model"),
            "{}: {m}",
            c.name
        );
    }
}

#[cfg(target_os = "linux")]
#[test]
fn model_predictions_match_host_probe_facts() {
    let env = pinlab_probe::cases::Env {
        root: true,
        dir: std::env::temp_dir(),
    };
    let get = |name: &str| {
        let c = pinlab_probe::cases::all()
            .into_iter()
            .find(|c| c.name == name)
            .expect(name);
        (c.model)(&env)
    };
    assert_eq!(
        get("register_anon_thp__1x2mib"),
        "OK acq+512 rel+511 VmPin 2048 kB | after unregister acq+512 rel+512 pfn kept"
    );
    assert_eq!(
        get("c_ext4_map_shared_rw__w__efault_1_1_transient_fast_grab"),
        "EFAULT acq+1 rel+1 VmPin 0 kB"
    );
    assert_eq!(
        get("hugetlb_private_pinned_fork_with_pool_of_1__enomem"),
        "ENOMEM"
    );
}
