//! The plain pages most resources need: a table of rows with links, and one item's facts with tables of
//! what belongs to it. Pages with forms of their own have their own templates.

use askama::Template;

use super::page::Chrome;

/// One cell: its text, and where it links to.
pub struct Cell {
    pub text: String,
    pub link: Option<String>,
}

impl Cell {
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            link: None,
        }
    }

    pub fn link(text: impl Into<String>, link: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            link: Some(link.into()),
        }
    }
}

pub struct Table {
    pub id: &'static str,
    pub title: String,
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<Cell>>,
    pub empty: &'static str,
}

#[derive(Template)]
#[template(path = "dashboard/table.html")]
pub struct TablePage {
    pub chrome: Chrome,
    pub heading: String,
    pub intro: Option<&'static str>,
    pub facts: Vec<(&'static str, String)>,
    pub tables: Vec<Table>,
    /// A link to the next page, when there is one.
    pub next: Option<String>,
    /// A preformatted block (a received message's text).
    pub text: Option<String>,
}
