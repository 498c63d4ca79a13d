//! The story's voice: what `STORY.md` at a workspace root says about point of view, tense,
//! language and style, formatted for a prompt within a reserved budget; and the language every
//! prompt asks the model to write in.
//!
//! `STORY.md` may start with YAML front matter (`title`, `pov`, `tense`, `language`, `voice`) and
//! may use sections: `## Voice` (or `## Style`) for a brief, `## Style sample` (or `## Sample`) for
//! a passage to imitate; plain `POV: …`, `Tense: …`, `Language: …` lines work as well. Everything
//! else in the file is the premise, carried as far as the budget allows.
//!
//! Pure functions over text; the file itself comes from the notes index (refreshed on save).
//! Must never: log the story's text.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use unicode_segmentation::UnicodeSegmentation;

use super::notes::front_matter::split_yaml;
use super::recent::Recent;

/// What the author wrote in `STORY.md`, sorted into its parts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Story {
    pub title: Option<String>,
    pub pov: Option<String>,
    pub tense: Option<String>,
    /// The language the author declared (any spelling: "Russian", "русский", "ru").
    pub language: Option<String>,
    pub voice: Option<String>,
    pub sample: Option<String>,
    pub premise: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FrontMatter {
    title: Option<String>,
    #[serde(alias = "POV", alias = "point_of_view", alias = "pointOfView")]
    pov: Option<String>,
    tense: Option<String>,
    language: Option<String>,
    #[serde(alias = "style")]
    voice: Option<String>,
    #[serde(alias = "style_sample", alias = "styleSample")]
    sample: Option<String>,
}

/// Which part of the story a `## Section` of the file holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Premise,
    Voice,
    Sample,
}

impl Story {
    /// Sorts the text of a `STORY.md` file. Malformed front matter is read as part of the body
    /// (nothing the author wrote is lost).
    pub fn parse(source: &str) -> Story {
        let (front, body) = split_yaml(source);
        let front: FrontMatter = front
            .and_then(|yaml| serde_norway::from_str(yaml).ok())
            .unwrap_or_default();
        let mut story = Story {
            title: clean(front.title),
            pov: clean(front.pov),
            tense: clean(front.tense),
            language: clean(front.language),
            voice: clean(front.voice),
            sample: clean(front.sample),
            premise: None,
        };
        let mut parts: HashMap<u8, String> = HashMap::new();
        let mut part = Part::Premise;
        let mut seen_title = false;
        for line in body.lines() {
            let trimmed = line.trim();
            if let Some(heading) = trimmed.strip_prefix('#') {
                let heading = heading.trim_start_matches('#').trim();
                match section_of(heading) {
                    Some(next) => {
                        part = next;
                        continue;
                    }
                    // The book's title line (`# Title`), once.
                    None if !seen_title && trimmed.starts_with("# ") => {
                        seen_title = true;
                        if story.title.is_none() {
                            story.title = clean(Some(heading.to_string()));
                        }
                        part = Part::Premise;
                        continue;
                    }
                    None => part = Part::Premise,
                }
            }
            if part == Part::Premise
                && let Some((key, value)) = trimmed.split_once(':')
                && let Some(slot) = labelled(&mut story, key)
            {
                if slot.is_none() {
                    *slot = clean(Some(value.to_string()));
                }
                continue;
            }
            let text = parts.entry(part as u8).or_default();
            text.push_str(line);
            text.push('\n');
        }
        let take = |parts: &mut HashMap<u8, String>, part: Part| clean(parts.remove(&(part as u8)));
        if let Some(voice) = take(&mut parts, Part::Voice) {
            story.voice = Some(join(story.voice.take(), voice));
        }
        if let Some(sample) = take(&mut parts, Part::Sample) {
            story.sample = Some(join(story.sample.take(), sample));
        }
        story.premise = take(&mut parts, Part::Premise);
        story
    }

    /// The block a prompt carries, within `max_chars`: the declared point of view, tense and
    /// language first, then the style sample, the voice brief and the premise as room allows.
    /// `language` is the language the prompt asks for (declared or detected).
    pub fn for_prompt(&self, language: &str, max_chars: usize) -> String {
        let mut out = String::new();
        let line = |label: &str, value: Option<&str>, out: &mut String| {
            if let Some(value) = value {
                let entry = format!("{label}: {}\n", one_line(value));
                if out.chars().count() + entry.chars().count() <= max_chars {
                    out.push_str(&entry);
                }
            }
        };
        line("Title", self.title.as_deref(), &mut out);
        line("Point of view", self.pov.as_deref(), &mut out);
        line("Tense", self.tense.as_deref(), &mut out);
        line("Language", Some(language), &mut out);
        for (label, text) in [
            (
                "Style sample (imitate its voice, not its content)",
                &self.sample,
            ),
            ("Voice", &self.voice),
            ("About the story", &self.premise),
        ] {
            let Some(text) = text else { continue };
            let used = out.chars().count();
            let header = format!("{label}:\n");
            let room = max_chars.saturating_sub(used + header.chars().count() + 1);
            // A fragment shorter than this says nothing about a voice.
            if room < 80 {
                continue;
            }
            let part = cut_to_sentences(text, room);
            if !part.is_empty() {
                out.push_str(&header);
                out.push_str(part);
                out.push('\n');
            }
        }
        out.trim_end().to_string()
    }
}

/// The body part a section heading names, by its words (English and Russian).
fn section_of(heading: &str) -> Option<Part> {
    let heading = heading.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| heading.contains(w));
    if has(&["sample", "excerpt", "образец", "пример"]) {
        Some(Part::Sample)
    } else if has(&["voice", "style", "tone", "голос", "стиль", "тон"]) {
        Some(Part::Voice)
    } else {
        None
    }
}

/// The field a `Label: value` line of the body sets, if the label is one of the known ones.
fn labelled<'s>(story: &'s mut Story, key: &str) -> Option<&'s mut Option<String>> {
    match key.trim().to_lowercase().as_str() {
        "pov" | "point of view" | "точка зрения" | "повествование" => {
            Some(&mut story.pov)
        }
        "tense" | "время" => Some(&mut story.tense),
        "language" | "язык" => Some(&mut story.language),
        _ => None,
    }
}

fn join(first: Option<String>, second: String) -> String {
    match first {
        Some(first) => format!("{first}\n{second}"),
        None => second,
    }
}

fn clean(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn one_line(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The longest run of whole sentences from the start of `text` within `max_chars`; the first
/// words of the first sentence when not even that fits.
pub fn cut_to_sentences(text: &str, max_chars: usize) -> &str {
    let sentences = super::notes::cut_to_sentences(text, max_chars);
    if !sentences.is_empty() {
        return sentences;
    }
    let mut end = 0;
    for (index, word) in text.split_word_bound_indices() {
        if text[..index + word.len()].chars().count() > max_chars {
            break;
        }
        end = index + word.len();
    }
    text[..end].trim_end()
}

/// The parsed `STORY.md` of each root, re-parsed only when its text changes.
#[derive(Default)]
pub struct StoryCache {
    parsed: Mutex<HashMap<PathBuf, (String, Arc<Story>)>>,
}

impl StoryCache {
    /// The story of `root` given the current text of its `STORY.md`.
    pub fn get(&self, root: &Path, source: &str) -> Arc<Story> {
        let mut parsed = self
            .parsed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((seen, story)) = parsed.get(root)
            && seen == source
        {
            return story.clone();
        }
        let story = Arc::new(Story::parse(source));
        parsed.insert(root.to_path_buf(), (source.to_string(), story.clone()));
        story
    }
}

/// How long a document's detected language is reused: a manuscript does not change language
/// while the author types, and detection costs tens of microseconds per request.
const LANGUAGE_TTL: std::time::Duration = std::time::Duration::from_secs(30);
/// The most documents whose language is remembered.
const MAX_REMEMBERED_LANGUAGES: usize = 256;

/// The detected language of each document, reused for [`LANGUAGE_TTL`].
pub struct LanguageCache {
    detected: Recent<String>,
}

impl Default for LanguageCache {
    fn default() -> Self {
        LanguageCache {
            detected: Recent::new(LANGUAGE_TTL, MAX_REMEMBERED_LANGUAGES),
        }
    }
}

impl LanguageCache {
    /// [`language`] for document `uri`, detecting at most once per [`LANGUAGE_TTL`] (a declared
    /// language is never cached: it is free).
    pub fn language(&self, uri: &str, declared: Option<&str>, before: &str, after: &str) -> String {
        if declared.is_some_and(|d| !d.trim().is_empty()) {
            return language(declared, before, after);
        }
        if let Some(known) = self.detected.get(uri) {
            return known;
        }
        let found = language(None, before, after);
        // "Not yet known" is not remembered: the next request may have more text to tell by.
        if found != UNKNOWN_LANGUAGE {
            self.detected.put(uri, found.clone());
        }
        found
    }
}

/// How much of the text around the cursor the language is detected from: enough for a
/// reliable answer, little enough to stay a few tens of microseconds.
const DETECT_CHARS: usize = 1_200;

/// The language to ask the model to write in: the one `STORY.md` declares, else the one the
/// text around the cursor is written in (when detection is reliable), else a description.
pub fn language(declared: Option<&str>, before: &str, after: &str) -> String {
    if let Some(declared) = declared.map(str::trim).filter(|d| !d.is_empty()) {
        return declared_language(declared);
    }
    detect(before, after)
        .map(str::to_string)
        .unwrap_or_else(|| UNKNOWN_LANGUAGE.to_string())
}

/// What the prompt says when the language cannot be told (too little text).
pub const UNKNOWN_LANGUAGE: &str = "the language of the manuscript";

/// Below this confidence a detection that whatlang itself calls unreliable is not used (a
/// two-sentence Russian paragraph scores about 0.39; mixed or very short text far less).
const MIN_CONFIDENCE: f64 = 0.3;

/// The English name of the language of the text around the cursor, when it can be told.
pub fn detect(before: &str, after: &str) -> Option<&'static str> {
    let mut sample = tail(before, DETECT_CHARS).to_string();
    if sample.chars().count() < DETECT_CHARS / 2 {
        sample.push(' ');
        sample.push_str(head(after, DETECT_CHARS / 2));
    }
    // Markdown marks and digits say nothing about the language.
    let letters: String = sample
        .chars()
        .map(|c| if c.is_alphabetic() { c } else { ' ' })
        .collect();
    let info = whatlang::detect(&letters)?;
    // Short texts in closely related languages are often unreliable: trust the answer when the
    // detector does, or when the script leaves no doubt (one language uses it).
    let unique_script = matches!(
        info.script(),
        whatlang::Script::Greek
            | whatlang::Script::Hebrew
            | whatlang::Script::Georgian
            | whatlang::Script::Armenian
            | whatlang::Script::Hangul
            | whatlang::Script::Thai
            | whatlang::Script::Katakana
            | whatlang::Script::Hiragana
    );
    (info.is_reliable() || unique_script || info.confidence() >= MIN_CONFIDENCE)
        .then(|| info.lang().eng_name())
}

/// A declared language as a prompt names it: ISO 639-3 codes and native names of the languages
/// whatlang knows become their English name ("rus", "русский" → "Russian"); anything else is
/// kept as written (a model understands "en" or "Plattdeutsch" as well).
fn declared_language(declared: &str) -> String {
    let lower = declared.to_lowercase();
    if let Some(lang) = whatlang::Lang::from_code(lower.as_str()) {
        return lang.eng_name().to_string();
    }
    whatlang::Lang::all()
        .iter()
        .find(|lang| lang.name().to_lowercase() == lower || lang.eng_name().to_lowercase() == lower)
        .map_or_else(|| declared.to_string(), |lang| lang.eng_name().to_string())
}

/// The last `max_chars` chars of `text`.
fn tail(text: &str, max_chars: usize) -> &str {
    match text.char_indices().rev().nth(max_chars.saturating_sub(1)) {
        Some((index, _)) if max_chars > 0 => &text[index..],
        _ if max_chars == 0 => "",
        _ => text,
    }
}

/// The first `max_chars` chars of `text`.
fn head(text: &str, max_chars: usize) -> &str {
    match text.char_indices().nth(max_chars) {
        Some((index, _)) => &text[..index],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = "---\ntitle: The Salt Ledger\npov: close third person, Wren Hale\ntense: past\nlanguage: English\n---\n# The Salt Ledger\n\nA harbour-town mystery.\n\n## Voice\nSpare sentences. Curly quotes.\n\n## Style sample\nThe tide came in grey and went out greyer.\n";

    #[test]
    fn front_matter_and_sections_are_sorted() {
        let story = Story::parse(FULL);
        assert_eq!(story.title.as_deref(), Some("The Salt Ledger"));
        assert_eq!(story.pov.as_deref(), Some("close third person, Wren Hale"));
        assert_eq!(story.tense.as_deref(), Some("past"));
        assert_eq!(story.language.as_deref(), Some("English"));
        assert_eq!(
            story.voice.as_deref(),
            Some("Spare sentences. Curly quotes.")
        );
        assert_eq!(
            story.sample.as_deref(),
            Some("The tide came in grey and went out greyer.")
        );
        assert_eq!(story.premise.as_deref(), Some("A harbour-town mystery."));
    }

    #[test]
    fn labelled_lines_work_without_front_matter() {
        let story = Story::parse(
            "# Маяк\nPOV: first person, Mara\nTense: present\nЯзык: русский\n\nРоман о маяке.\n\n## Образец стиля\nТуман лёг на воду.\n",
        );
        assert_eq!(story.title.as_deref(), Some("Маяк"));
        assert_eq!(story.pov.as_deref(), Some("first person, Mara"));
        assert_eq!(story.tense.as_deref(), Some("present"));
        assert_eq!(story.language.as_deref(), Some("русский"));
        assert_eq!(story.sample.as_deref(), Some("Туман лёг на воду."));
        assert_eq!(story.premise.as_deref(), Some("Роман о маяке."));
    }

    #[test]
    fn malformed_front_matter_loses_nothing() {
        let story = Story::parse("---\npov: [unclosed\n---\nThe premise.\n");
        assert_eq!(story.pov, None);
        assert_eq!(story.premise.as_deref(), Some("The premise."));
        // No closing line: the whole file is the body.
        let story = Story::parse("---\npov: first\nThe premise.\n");
        assert!(story.premise.unwrap().contains("The premise."));
    }

    #[test]
    fn the_prompt_block_keeps_the_essentials_first_within_the_budget() {
        let story = Story::parse(FULL);
        let full = story.for_prompt("English", 2_000);
        assert!(full.starts_with("Title: The Salt Ledger\nPoint of view: close third person, Wren Hale\nTense: past\nLanguage: English\n"), "{full}");
        assert!(full.contains("The tide came in grey and went out greyer."));
        assert!(full.contains("About the story:\nA harbour-town mystery."));
        let small = story.for_prompt("English", 120);
        assert!(small.chars().count() <= 120, "{small}");
        assert!(small.contains("Point of view"));
        assert!(!small.contains("About the story"));
        for budget in 0..300 {
            assert!(story.for_prompt("English", budget).chars().count() <= budget);
        }
        assert_eq!(
            Story::default().for_prompt("Russian", 500),
            "Language: Russian"
        );
    }

    #[test]
    fn the_language_is_declared_or_detected() {
        assert_eq!(language(Some("rus"), "", ""), "Russian");
        assert_eq!(language(Some("en"), "", ""), "en");
        assert_eq!(language(Some("Русский"), "", ""), "Russian");
        assert_eq!(language(Some("Klingon"), "", ""), "Klingon");
        let russian = "Мара поднялась по лестнице маяка. Лампа не горела, и Куэйл так и не вернулся с берега.";
        assert_eq!(language(None, russian, ""), "Russian");
        let english = "Wren climbed the stairs of the tower. They smelled of lamp oil and wet rope, and the door at the top was open.";
        assert_eq!(language(None, english, ""), "English");
        let german = "Sie stieg die Treppe des Turms hinauf. Es roch nach Lampenöl und nassem Seil, und die Tür oben stand offen.";
        assert_eq!(language(None, german, ""), "German");
        assert_eq!(language(None, "", ""), UNKNOWN_LANGUAGE);
        assert_eq!(language(None, "# 3\n\n12", ""), UNKNOWN_LANGUAGE);
    }

    #[test]
    fn a_documents_language_is_detected_once_and_a_declared_one_wins() {
        let cache = LanguageCache::default();
        let russian = "Мара поднялась по лестнице маяка. Лампа не горела, и Куэйл так и не вернулся с берега.";
        let english = "Wren climbed the stairs of the tower. They smelled of lamp oil and wet rope, and the door at the top was open.";
        assert_eq!(cache.language("file:///a.md", None, russian, ""), "Russian");
        // Remembered: a quoted English line in the same document does not flip it.
        assert_eq!(cache.language("file:///a.md", None, english, ""), "Russian");
        assert_eq!(cache.language("file:///b.md", None, english, ""), "English");
        assert_eq!(
            cache.language("file:///a.md", Some("German"), russian, ""),
            "German"
        );
        // Too little text is not remembered.
        assert_eq!(
            cache.language("file:///c.md", None, "# 3", ""),
            UNKNOWN_LANGUAGE
        );
        assert_eq!(cache.language("file:///c.md", None, english, ""), "English");
    }

    #[test]
    fn the_cache_reparses_only_a_changed_file() {
        let cache = StoryCache::default();
        let root = Path::new("/novel");
        let first = cache.get(root, FULL);
        assert!(Arc::ptr_eq(&first, &cache.get(root, FULL)));
        let changed = cache.get(root, "---\ntense: present\n---\n");
        assert_eq!(changed.tense.as_deref(), Some("present"));
    }

    #[test]
    fn cuts_keep_whole_sentences_or_whole_words() {
        assert_eq!(cut_to_sentences("One two. Three four.", 12), "One two.");
        assert_eq!(cut_to_sentences("Onetwothree fourfive", 14), "Onetwothree");
        assert_eq!(cut_to_sentences("Ёлка", 2), "");
    }
}
