pub mod mutate;
#[allow(dead_code)]
pub mod run;
