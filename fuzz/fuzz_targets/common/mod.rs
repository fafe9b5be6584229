//! Shared by the targets: how an input chooses the reads its bytes
//! arrive in.

/// Splits `input` into a split plan and the data: the first byte says
/// how many plan bytes follow (0..=15); each plan byte is a read length
/// (0 read as 1), used in turn, cyclically. No plan: one byte per read.
pub fn split_plan(input: &[u8]) -> (Vec<usize>, &[u8]) {
    let Some((&k, rest)) = input.split_first() else {
        return (vec![1], input);
    };
    let k = (k as usize % 16).min(rest.len());
    let plan: Vec<usize> = rest[..k].iter().map(|&b| (b as usize).max(1)).collect();
    let plan = if plan.is_empty() { vec![1] } else { plan };
    (plan, &rest[k..])
}

/// `data` cut into reads by `plan`.
pub fn chunks<'a>(data: &'a [u8], plan: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < data.len() {
        let n = plan[i % plan.len()].min(data.len() - at);
        out.push(&data[at..at + n]);
        at += n;
        i += 1;
    }
    out
}
