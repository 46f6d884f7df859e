//! Markdown output: GitHub-flavoured tables.

use super::{component_rows, headline, paged_line, verdict, Listing, PlanReport};

fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut out =
        format!("| {} |\n|{}|\n", headers.join(" | "), headers.iter().map(|_| "---").collect::<Vec<_>>().join("|"));
    for r in rows {
        out.push_str(&format!("| {} |\n", r.iter().map(|c| c.replace('|', "\\|")).collect::<Vec<_>>().join(" | ")));
    }
    out
}

pub fn plan(r: &PlanReport) -> String {
    let rows: Vec<Vec<String>> = component_rows(r).into_iter().map(Vec::from).collect();
    let basis: Vec<Vec<String>> =
        r.basis.iter().map(|b| vec![b.name.clone(), b.value.clone(), b.source.clone()]).collect();
    let paged = paged_line(r).map_or(String::new(), |p| format!("{p}\n\n"));
    format!(
        "### {}\n\n{}\n**{}**\n\n{paged}{}",
        headline(r),
        table(&["component", "GiB", "share"], &rows),
        verdict(r),
        table(&["basis", "value", "source"], &basis)
    )
}

pub fn listing(l: &Listing) -> String {
    format!("### {}\n\n{}", l.title, table(&l.headers, &l.rows))
}
