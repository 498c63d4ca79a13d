//! Deterministic story prose for the simulator: a small seeded generator of plausible sentences
//! that picks up character names from the prompt, so `demo` and the editors' screenshots read
//! like a continuation.
//!
//! A prompt rendered from `prompts/` is read as a model would: names come from its manuscript
//! and notes sections, not its instructions; a text before the cursor that stops on a sentence's
//! subject ("…into the dark. She") gets the rest of that sentence; a rewrite runs about as long
//! as its selection. Same prompt → same text. Stories mostly in Cyrillic get Russian prose (what
//! a Yandex user writes), everything else English.

/// What the generator needs from a request.
#[derive(Debug, Clone, Default)]
pub struct Prompt {
    pub model: String,
    pub system: String,
    /// The conversation's texts in order; the last user text is where names are taken from.
    pub texts: Vec<String>,
    pub max_tokens: u32,
    pub stop: Vec<String>,
}

/// The generated continuation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continuation {
    pub text: String,
    /// True when the token budget cut the text (the vendor's "length").
    pub truncated: bool,
    /// True when a stop sequence ended the text.
    pub stopped: bool,
    pub input_tokens: u32,
    pub output_tokens: u32,
}

/// splitmix64: tiny, fast, and stable across versions (a dependency's RNG could change its
/// stream and with it every recorded demo).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

const NOT_NAMES: &[&str] = &[
    "I",
    "The",
    "A",
    "An",
    "And",
    "But",
    "He",
    "She",
    "They",
    "It",
    "We",
    "You",
    "His",
    "Her",
    "Their",
    "Then",
    "When",
    "There",
    "This",
    "That",
    "In",
    "On",
    "At",
    "Of",
    "Not",
    "No",
    "Yes",
    "Oh",
    "Well",
    "What",
    "Why",
    "How",
    "Where",
    "Who",
    "If",
    "So",
    "As",
    "All",
    "Only",
    "Even",
    "Just",
    "Now",
    "Here",
    "Perhaps",
    "Maybe",
    "Still",
    "Yet",
    "Once",
    "After",
    "Before",
    "With",
    "Without",
    "From",
    "To",
    "My",
    "Our",
    "Your",
    "Its",
    "Nothing",
    "Someone",
    "Something",
    "Everyone",
    "Continue",
    "Write",
    "Mr",
    "Mrs",
    "Ms",
    "Dr",
    "Я",
    "Он",
    "Она",
    "Они",
    "Мы",
    "Вы",
    "Это",
    "И",
    "Но",
    "В",
    "На",
    "Продолжи",
    "Не",
    "Нет",
    "Да",
    "Что",
    "Как",
    "Где",
    "Кто",
    "Когда",
    "Если",
    "Так",
    "Потом",
    "Теперь",
    "Здесь",
    "Там",
    "Только",
    "Ты",
    "А",
    // The openers of the generator's own sentences: once its text is in a manuscript, the next
    // prompt must not take them for names.
    "Somewhere",
    "Outside",
    "Neither",
    "For",
    "Tell",
    "Где-то",
    "Долгое",
    "Дождь",
    "За",
];

/// Words that, with the word after them, number a part of the book ("Chapter One"): no one's name.
const NUMBERED: &[&str] = &["Chapter", "Part", "Book", "Глава", "Часть", "Книга"];

/// The last two distinct capitalised words outside a stop list of sentence openers: usually the
/// people of the scene. Markdown headings and the number after "Chapter" name no one.
fn names_in(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let prose = text
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'));
    let mut previous = String::new();
    for raw in prose.flat_map(str::split_whitespace) {
        let word: String = raw
            .trim_matches(|c: char| !c.is_alphabetic() && c != '-')
            .to_string();
        let capitalised = word.chars().next().is_some_and(char::is_uppercase)
            && word.chars().skip(1).all(|c| c.is_lowercase() || c == '-')
            && word.chars().count() > 1;
        // Sentence-initial words count too (names often open a sentence); the stop list keeps
        // out the usual openers.
        if capitalised
            && !NOT_NAMES.contains(&word.as_str())
            && !NUMBERED.contains(&word.as_str())
            && !NUMBERED.contains(&previous.as_str())
        {
            names.retain(|n| n != &word);
            names.push(word.clone());
        }
        previous = word;
    }
    let n = names.len();
    names.split_off(n.saturating_sub(2))
}

/// The text between `<tag>` and `</tag>` in a prompt rendered from the project's templates.
fn section<'a>(text: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = text.find(&open)? + open.len();
    let len = text[start..].find(&close)?;
    let inner = &text[start..start + len];
    Some(inner.strip_prefix('\n').unwrap_or(inner))
}

/// Where the story's people are named in a templated prompt, farthest from the cursor first:
/// a name just before the cursor is the likeliest to act next.
const STORY_SECTIONS: &[&str] = &[
    "story_notes",
    "previous_chapter_ending",
    "text_after_cursor",
    "text_after_selection",
    "text_before_selection",
    "selection",
    "text_before_cursor",
];

/// The manuscript and notes a templated prompt carries, without the instructions around them
/// (whose "Write in English" names no one); a prompt without sections is all story.
fn story_text(prompt: &str) -> String {
    let parts: Vec<&str> = STORY_SECTIONS
        .iter()
        .filter_map(|tag| section(prompt, tag))
        .collect();
    if parts.is_empty() {
        prompt.to_string()
    } else {
        parts.join("\n")
    }
}

/// Words that, ending the text before the cursor, leave a sentence waiting for its verb.
const SUBJECTS: &[&str] = &["I", "He", "She", "They", "We", "he", "she", "they", "we"];

/// Whether `before` stops on the subject of an unfinished sentence: a pronoun or one of `names`.
fn stops_on_subject(before: &str, names: &[String]) -> bool {
    let Some(word) = before.split_whitespace().last() else {
        return false;
    };
    !before.ends_with(char::is_whitespace)
        && (SUBJECTS.contains(&word) || names.iter().any(|n| n == word))
}

fn mostly_cyrillic(text: &str) -> bool {
    let (mut cyr, mut latin) = (0usize, 0usize);
    for c in text.chars() {
        if ('\u{0400}'..='\u{04FF}').contains(&c) {
            cyr += 1;
        } else if c.is_ascii_alphabetic() {
            latin += 1;
        }
    }
    cyr > latin
}

const EN: &[&str] = &[
    "{A} paused at the {place}, listening to the {sound}.",
    "“{line},” {A} said, and {B} did not answer at once.",
    "The {object} lay where {B} had left it, {light}.",
    "Somewhere beyond the {place}, {sound2}.",
    "{A} thought of the letter again — the one {B} had never sent.",
    "For a long moment neither of them moved.",
    "{B} turned the {object} over in both hands.",
    "The {weather} had not let up since morning.",
    "{A} knew, then, that the {secret} would not keep much longer.",
    "“{line},” {B} whispered.",
    "Outside, the {weather} pressed against the windows.",
    "{A} crossed the room and stood by the {place} until the {sound} faded.",
    "Neither of them spoke of what had happened at the {place}.",
    "{B} laughed, but there was no warmth in it.",
];
const EN_PLACE: &[&str] = &[
    "harbour wall",
    "kitchen door",
    "orchard gate",
    "old mill",
    "station platform",
    "stairwell",
];
const EN_SOUND: &[&str] = &[
    "rain on the slates",
    "kettle's thin whistle",
    "distant bells",
    "cry of the gulls",
];
const EN_SOUND2: &[&str] = &[
    "a dog barked twice and fell silent",
    "a cart rattled over the cobbles",
    "someone was whistling an old tune",
];
const EN_OBJECT: &[&str] = &[
    "brass key",
    "folded map",
    "lantern",
    "chipped teacup",
    "photograph",
];
const EN_LIGHT: &[&str] = &[
    "pale in the grey light",
    "gleaming in the lamplight",
    "half hidden in shadow",
];
const EN_WEATHER: &[&str] = &["rain", "wind", "fog", "snow"];
const EN_SECRET: &[&str] = &["secret", "promise", "truth", "silence"];
const EN_LINE: &[&str] = &[
    "We should have left yesterday",
    "You kept it all this time",
    "Tell me what you saw",
    "It isn't finished yet",
];

const RU: &[&str] = &[
    "{A} долго стоял у {place}, прислушиваясь к {sound}.",
    "— {line}, — тихо сказал {A}, и {B} не сразу ответила.",
    "{object} лежал там, где его оставила {B}.",
    "Дождь не прекращался с самого утра.",
    "Где-то за {place2} залаяла собака.",
    "Долгое мгновение никто из них не двигался.",
    "{A} вспомнил о письме — том самом, которое {B} так и не отправила.",
    "За окном шумело море, и ветер гнал по небу низкие тучи.",
];
const RU_PLACE: &[&str] = &["старой мельницы", "калитки", "окна", "причала"];
const RU_PLACE2: &[&str] = &["рекой", "лесом", "холмом"];
const RU_SOUND: &[&str] = &["шуму дождя", "далёкому звону", "крикам чаек"];
const RU_OBJECT: &[&str] = &["Медный ключ", "Старый фонарь", "Сложенный лист"];
const RU_LINE: &[&str] = &["Нам пора", "Ещё не поздно", "Расскажи, что ты видела"];

fn fill(template: &str, rng: &mut Rng, a: &str, b: &str, russian: bool) -> String {
    let mut out = template.replace("{A}", a).replace("{B}", b);
    let slots: &[(&str, &[&str])] = if russian {
        &[
            ("{place2}", RU_PLACE2),
            ("{place}", RU_PLACE),
            ("{sound}", RU_SOUND),
            ("{object}", RU_OBJECT),
            ("{line}", RU_LINE),
        ]
    } else {
        &[
            ("{place}", EN_PLACE),
            ("{sound2}", EN_SOUND2),
            ("{sound}", EN_SOUND),
            ("{object}", EN_OBJECT),
            ("{light}", EN_LIGHT),
            ("{weather}", EN_WEATHER),
            ("{secret}", EN_SECRET),
            ("{line}", EN_LINE),
        ]
    };
    for (slot, words) in slots {
        while out.contains(slot) {
            out = out.replacen(slot, rng.pick(words), 1);
        }
    }
    out
}

fn word_count(text: &str) -> u32 {
    u32::try_from(text.split_whitespace().count()).unwrap_or(u32::MAX)
}

/// The continuation of `prompt`: a few sentences (about 35–70 words), cut to roughly
/// `max_tokens` (a word counts as a token) and at the first stop sequence.
pub fn continue_story(prompt: &Prompt) -> Continuation {
    let mut parts: Vec<&str> = vec![&prompt.model, &prompt.system];
    parts.extend(prompt.texts.iter().map(String::as_str));
    let mut rng = Rng(fnv1a(&parts));
    let prompt_text = prompt.texts.last().map(String::as_str).unwrap_or("");
    // The text the reply follows: the manuscript before the cursor, or the whole prompt.
    let last = section(prompt_text, "text_before_cursor").unwrap_or(prompt_text);
    let story = story_text(prompt_text);
    let russian = mostly_cyrillic(&story);
    let names = names_in(&story);
    let (a, b) = match names.as_slice() {
        [] if russian => ("Анна".to_string(), "Вера".to_string()),
        [] => ("Mara".to_string(), "Tomas".to_string()),
        [one] => (
            one.clone(),
            if russian { "Вера" } else { "Tomas" }.to_string(),
        ),
        [.., x, y] => (y.clone(), x.clone()),
    };
    let templates = if russian { RU } else { EN };
    // Each template once per continuation (a shuffled deck), so sentences do not repeat.
    let mut deck: Vec<&str> = templates.to_vec();
    for i in (1..deck.len()).rev() {
        deck.swap(i, rng.below(i + 1));
    }
    // After "…she said" or a colon, the continuation opens with the line that was announced.
    let announced = last.trim_end().trim_end_matches(',').ends_with(':')
        || [
            "said",
            "asked",
            "whispered",
            "сказал",
            "сказала",
            "спросил",
            "спросила",
        ]
        .iter()
        .any(|w| last.trim_end().trim_end_matches(',').ends_with(w));
    if announced {
        deck.insert(
            0,
            if russian {
                "— {line}."
            } else {
                "“{line}.”"
            },
        );
    }
    // "…into the dark. She" wants a verb, not a new sentence: the first sentence is one of
    // those that open with the acting character, told without its subject.
    let unfinished = !russian && stops_on_subject(last, &names);
    if unfinished && let Some(at) = deck.iter().position(|t| t.starts_with("{A} ")) {
        deck.swap(0, at);
    }
    // A rewrite (prompts/rewrite_selection.md) replaces the selection: about as long as it.
    let rewritten = section(prompt_text, "selection")
        .filter(|_| prompt_text.contains("\nRequested tone: "))
        .map(word_count);
    let target = match rewritten {
        Some(words) => words.max(6),
        None => 35 + rng.below(36) as u32,
    };
    let budget = (prompt.max_tokens.saturating_mul(3) / 4).max(1);
    let mut text = String::new();
    let mut next = 0;
    while word_count(&text) < target.min(budget) {
        let mut template = deck[next % deck.len()];
        if unfinished && next == 0 {
            template = template.strip_prefix("{A} ").unwrap_or(template);
        }
        next += 1;
        let sentence = fill(template, &mut rng, &a, &b, russian);
        text.push(' ');
        text.push_str(&sentence);
    }
    let mut truncated = false;
    if word_count(&text) > budget {
        truncated = true;
        let mut seen = 0;
        let mut cut = text.len();
        for (i, c) in text.char_indices() {
            if c == ' ' {
                if seen == budget {
                    cut = i;
                    break;
                }
                seen += 1;
            }
        }
        text.truncate(cut);
    }
    // A continuation follows the author's text: a space unless the text already ends in one.
    if last.is_empty() || last.ends_with(char::is_whitespace) {
        text.remove(0);
    }
    let mut stopped = false;
    if let Some(at) = prompt
        .stop
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()))
        .min()
    {
        text.truncate(at);
        stopped = true;
        truncated = false;
    }
    let input_tokens =
        prompt.texts.iter().map(|t| word_count(t)).sum::<u32>() + word_count(&prompt.system);
    Continuation {
        output_tokens: word_count(&text),
        text,
        truncated,
        stopped,
        input_tokens,
    }
}

/// Splits `text` into stream pieces of one to three words (spaces kept with the word that
/// follows), deterministically.
pub fn pieces(text: &str, seed: u64) -> Vec<String> {
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    let mut current = String::new();
    let mut words_in_piece = 0;
    let mut want = 1 + rng.below(3);
    for (i, c) in text.char_indices() {
        if c == ' ' && i > 0 && !current.trim().is_empty() {
            words_in_piece += 1;
            if words_in_piece >= want {
                out.push(std::mem::take(&mut current));
                words_in_piece = 0;
                want = 1 + rng.below(3);
            }
        }
        current.push(c);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompts::{TemplateSource, Vars};

    fn prompt(text: &str, max_tokens: u32) -> Prompt {
        Prompt {
            model: "m".into(),
            system: String::new(),
            texts: vec![text.into()],
            max_tokens,
            stop: vec![],
        }
    }

    #[test]
    fn the_same_prompt_gives_the_same_text() {
        let p = prompt("Elena opened the door and saw Marcus.", 200);
        assert_eq!(continue_story(&p), continue_story(&p));
        let other = prompt("Elena opened the window and saw Marcus.", 200);
        assert_ne!(continue_story(&p).text, continue_story(&other).text);
    }

    #[test]
    fn names_come_from_the_prompt() {
        let c = continue_story(&prompt(
            "The rain fell. Elena looked at Marcus across the table.",
            400,
        ));
        assert!(
            c.text.contains("Elena") || c.text.contains("Marcus"),
            "{}",
            c.text
        );
        assert!(!c.text.contains("Mara"));
        assert!(c.text.starts_with(' '), "continues after the author's text");
    }

    #[test]
    fn headings_and_chapter_numbers_are_not_names() {
        let heading = "# Chapter One\n\nMara pushed open the lighthouse door. The stairs spiralled up into the dark. She";
        assert_eq!(names_in(heading), ["Mara"]);
        let plain = "Chapter Two\n\nElena set the lamp down. Part Three of the letter was missing; Marcus knew.";
        assert_eq!(names_in(plain), ["Elena", "Marcus"]);
        assert_eq!(names_in("## Tomas\nГлава Первая\nОльга ждала."), ["Ольга"]);
        let openers = "Agnes spoke. \"Not in this. What did you see? Perhaps nothing.\" Mara";
        assert_eq!(names_in(openers), ["Agnes", "Mara"]);
    }

    /// The bundled template `prompts/{file}` rendered by the server's own renderer with
    /// `values`; its other variables are empty.
    fn render(file: &str, values: &[(&str, &str)]) -> String {
        let (file, text) = crate::prompts::bundled::FILES
            .iter()
            .find(|(f, _)| *f == file)
            .unwrap();
        let template = crate::prompts::parse(TemplateSource::Bundled(file), text).unwrap();
        let mut vars = Vars::new();
        for name in &template.variables {
            vars.set(name, "");
        }
        for &(name, value) in values {
            vars.set(name, value);
        }
        template.render(&vars).unwrap()
    }

    #[test]
    fn a_rewrite_is_about_as_long_as_the_selection() {
        let long = "Mara climbed the stairs. ".repeat(15);
        for (selection, at_least, at_most) in
            [("Mara did not turn round.", 6, 25), (long.as_str(), 60, 80)]
        {
            let text = render(
                "rewrite_selection.md",
                &[("selection", selection), ("tone", "concise")],
            );
            let c = continue_story(&prompt(&text, 400));
            assert!(
                (at_least..=at_most).contains(&c.output_tokens),
                "{}: {}",
                c.output_tokens,
                c.text
            );
        }
        // A selection in another template (Describe character inserts after it) keeps its length.
        let text = render("describe_character.md", &[("selection", "Mara")]);
        assert!(continue_story(&prompt(&text, 400)).output_tokens >= 35);
    }

    /// The ghost-text prompt as the server renders it from `prompts/inline_continuation.md`.
    fn ghost_prompt(before: &str, notes: &str) -> Prompt {
        let values = [
            ("before", before),
            ("notes", notes),
            ("language", "English"),
        ];
        prompt(&render("inline_continuation.md", &values), 60)
    }

    #[test]
    fn names_come_from_the_story_not_the_instructions() {
        let p = ghost_prompt("# Chapter One\n\nMara pushed open the lighthouse door.", "");
        assert!(p.texts[0].contains("Write in English"));
        assert_eq!(names_in(&story_text(&p.texts[0])), ["Mara"]);
        let with_notes = ghost_prompt("Mara waited.", "Tomas Reyes: the keeper's son.");
        assert_eq!(
            names_in(&story_text(&with_notes.texts[0])),
            ["Reyes", "Mara"]
        );
        for n in 0..40 {
            let c = continue_story(&ghost_prompt(&format!("Mara waited {n} minutes."), ""));
            assert!(!c.text.contains("English"), "{}", c.text);
        }
    }

    #[test]
    fn a_sentence_that_stops_on_its_subject_gets_its_verb() {
        for (n, subject) in ["She", "they", "Mara", "I"].iter().enumerate() {
            for round in 0..10 {
                let before = format!("Mara climbed {round} steps, then {n} more. {subject}");
                let c = continue_story(&ghost_prompt(&before, ""));
                let first = c.text.chars().nth(1).unwrap();
                assert!(
                    c.text.starts_with(' ') && first.is_lowercase(),
                    "{before}|{}",
                    c.text
                );
            }
        }
        // A finished sentence, a name with a comma, or a space already typed: a new sentence.
        for before in ["Mara waited.", "Mara,", "She "] {
            let c = continue_story(&ghost_prompt(before, ""));
            let skip = usize::from(!before.ends_with(' '));
            let first = c.text.chars().nth(skip).unwrap();
            assert!(first.is_uppercase() || first == '“', "{before}|{}", c.text);
            assert_eq!(c.text.starts_with(' '), skip == 1, "{before}|{}", c.text);
        }
    }

    #[test]
    fn an_announced_line_opens_the_reply_in_a_templated_prompt() {
        let c = continue_story(&ghost_prompt("Mara turned to Tomas and said:", ""));
        assert!(c.text.starts_with(" “"), "{}", c.text);
    }

    #[test]
    fn max_tokens_cuts_the_text_and_says_so() {
        let c = continue_story(&prompt("Elena waited.", 8));
        assert!(c.truncated);
        assert!(c.output_tokens <= 6, "{}", c.text);
    }

    #[test]
    fn stop_sequences_end_the_text() {
        let mut p = prompt("Elena waited.", 400);
        let full = continue_story(&p);
        let stop = full.text.split_whitespace().nth(3).unwrap().to_string();
        p.stop = vec![stop.clone()];
        let c = continue_story(&p);
        assert!(c.stopped);
        assert!(!c.text.contains(&stop));
    }

    #[test]
    fn cyrillic_prompts_get_russian_prose() {
        let c = continue_story(&prompt("Вечером Ольга встретила Игоря у реки.", 200));
        assert!(mostly_cyrillic(&c.text), "{}", c.text);
    }

    #[test]
    fn pieces_rebuild_the_text() {
        let text = " one two three four five six seven";
        assert_eq!(pieces(text, 7).concat(), text);
        assert!(pieces(text, 7).len() > 2);
    }
}
