//! Showing diagnostics as a compiler does: the file, line and column, the offending line with the
//! problem underlined, and the help. The drawing is miette's; this only hands it our positions.

use std::fmt;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};

use super::{Diagnostic, Diagnostics, Severity};

/// One diagnostic as miette sees it.
struct Shown<'d> {
    diagnostic: &'d Diagnostic,
    source: Option<NamedSource<String>>,
}

impl fmt::Debug for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.diagnostic, f)
    }
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl std::error::Error for Shown<'_> {}

impl miette::Diagnostic for Shown<'_> {
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.diagnostic
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.source.as_ref()?;
        let at = self.diagnostic.at?;
        let span = SourceSpan::new(at.offset.into(), at.len);
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(None, span))))
    }
}

impl Diagnostic {
    /// The diagnostic drawn for people: `file:line:column`, the line underlined, the help.
    /// Without the text (or a position) it is the one-line form.
    pub fn render(&self, color: bool) -> String {
        let source = match (&self.source, self.at) {
            (Some(text), Some(at)) if at.line > 0 => {
                Some(NamedSource::new(self.file.display().to_string(), text.to_string()))
            }
            _ => None,
        };
        let Some(source) = source else {
            let word = match self.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            return format!("{word}: {self}\n");
        };
        let shown = Shown {
            diagnostic: self,
            source: Some(source),
        };
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let mut out = String::new();
        let drawn = GraphicalReportHandler::new_themed(theme)
            .with_width(100)
            // Unwrapped: a message stays one line, for people searching and for grep.
            .with_wrap_lines(false)
            .with_context_lines(1)
            .render_report(&mut out, &shown);
        match drawn {
            Ok(()) => out,
            Err(_) => format!("error: {self}\n"),
        }
    }
}

impl Diagnostics {
    /// Every diagnostic drawn, then a count.
    pub fn render(&self, color: bool) -> String {
        let mut out = String::new();
        for d in &self.0 {
            out.push_str(&d.render(color));
            out.push('\n');
        }
        let errors = self.0.iter().filter(|d| d.severity == Severity::Error).count();
        out.push_str(&match errors {
            1 => "1 error in the manifest".to_string(),
            n => format!("{n} errors in the manifest"),
        });
        out
    }
}
