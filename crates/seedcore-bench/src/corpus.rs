//! The synthetic facts of F1: a built-in word list, a small tag set, and the two marker words
//! whose frequencies are fixed by construction (a rare one and a common one).

/// Filler words facts are made of, each in roughly 3 % of facts. None contains a marker.
pub const WORDS: [&str; 240] = [
    "able", "acid", "actor", "after", "agent", "album", "alert", "amber", "angle", "apple",
    "april", "arena", "armor", "arrow", "atlas", "audio", "autumn", "avenue", "badge", "baker",
    "balance", "bamboo", "banner", "barrel", "basket", "battery", "beacon", "beetle", "berry",
    "bishop", "blanket", "blossom", "border", "bottle", "branch", "breeze", "brick", "bridge",
    "bronze", "bucket", "butter", "cabin", "cable", "camera", "canal", "candle", "canyon",
    "carbon", "cargo", "carpet", "castle", "cedar", "cellar", "chalk", "channel", "chapter",
    "cherry", "circle", "citizen", "clever", "climate", "clock", "cloud", "cobalt", "coffee",
    "comet", "copper", "coral", "cotton", "cousin", "crater", "credit", "cricket", "crystal",
    "custom", "dagger", "dancer", "debate", "desert", "diesel", "dinner", "doctor", "dragon",
    "drawer", "eagle", "eclipse", "editor", "effort", "elbow", "ember", "empire", "engine",
    "equal", "escape", "fabric", "falcon", "feather", "fence", "ferry", "fiber", "figure",
    "filter", "flame", "flavor", "flower", "forest", "fossil", "fountain", "fresh", "galaxy",
    "garden", "garlic", "gentle", "ginger", "glacier", "glove", "golden", "gravel", "guitar",
    "hammer", "hazel", "helmet", "hollow", "honey", "horizon", "humble", "island", "ivory",
    "jacket", "jasmine", "jelly", "jungle", "kettle", "kidney", "kitten", "ladder", "lantern",
    "laser", "lemon", "lesson", "lilac", "linen", "lizard", "lobster", "locket", "lumber",
    "magnet", "mango", "marble", "meadow", "medal", "melody", "mirror", "mitten", "monkey",
    "mortar", "muffin", "museum", "napkin", "needle", "nickel", "noodle", "number", "nutmeg",
    "object", "ocean", "olive", "onion", "orbit", "orchid", "outlet", "oxygen", "paddle", "palace",
    "panda", "pepper", "pillow", "pilot", "planet", "plaza", "pocket", "poem", "potato", "powder",
    "prism", "pumpkin", "puzzle", "quiet", "rabbit", "radar", "raisin", "random", "raven",
    "record", "ribbon", "river", "rocket", "saddle", "salmon", "sandal", "scarlet", "signal",
    "silver", "sketch", "socket", "spiral", "sponge", "spruce", "statue", "stone", "sugar",
    "summit", "sunset", "tablet", "tangle", "teapot", "temple", "thunder", "ticket", "timber",
    "tomato", "tunnel", "turtle", "umbrella", "valley", "velvet", "violet", "volcano", "wagon",
    "walnut", "window", "winter", "wizard", "yellow", "yogurt", "zebra", "zenith", "zipper",
    "meteor", "nectar",
];

/// Tags facts carry, 0 to 5 each, drawn uniformly: each tag is on about a fifth of the facts.
pub const TAGS: [&str; 12] = [
    "ops", "infra", "ml", "web", "billing", "security", "data", "mobile", "search", "auth",
    "storage", "network",
];

/// In one fact out of `RARE_EVERY` (0.05 %): the rare query word.
pub const RARE_WORD: &str = "quetzal";
pub const RARE_EVERY: i64 = 2_000;

/// In one fact out of `COMMON_EVERY` (5 %): the common query word.
pub const COMMON_WORD: &str = "harbor";
pub const COMMON_EVERY: i64 = 20;

/// The tag the tag queries filter on.
pub const QUERY_TAG: &str = "ops";

/// The fields of one fact the create phases send.
pub struct FactFields {
    pub text: String,
    pub tags: Vec<String>,
    pub meta_data: serde_json::Value,
}

/// The `seed`-th fact the create phases send; different seeds give different facts. Seeds
/// carry the marker words as often as the loaded facts do (the same rule on the seed as on
/// the loader's row number), so facts created between measurements keep the words' share
/// the same everywhere in the table, the newest facts included.
pub fn fact(seed: u64) -> FactFields {
    let pick =
        |k: u64, len: usize| (mix(seed.wrapping_mul(31).wrapping_add(k)) % len as u64) as usize;
    let words = 6 + (seed % 7);
    let mut text: Vec<&str> = (0..words).map(|k| WORDS[pick(k, WORDS.len())]).collect();
    if seed as i64 % COMMON_EVERY == 3 {
        text.push(COMMON_WORD);
    }
    if seed as i64 % RARE_EVERY == 7 {
        text.push(RARE_WORD);
    }
    let mut tags: Vec<String> = (0..seed % 6)
        .map(|k| TAGS[pick(100 + k, TAGS.len())].to_string())
        .collect();
    tags.sort();
    tags.dedup();
    FactFields {
        text: text.join(" "),
        tags,
        meta_data: serde_json::json!({"source": "bench-api", "n": seed}),
    }
}

/// The body of `POST /api/v1/facts` for `fact(seed)`.
pub fn fact_body(seed: u64) -> String {
    let fact = fact(seed);
    serde_json::json!({"text": fact.text, "tags": fact.tags, "meta_data": fact.meta_data})
        .to_string()
}

/// A cheap integer hash (splitmix64's finaliser), to vary bodies without a random generator.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_word_contains_a_marker_or_the_reverse() {
        for word in WORDS.iter().chain(TAGS.iter()) {
            for marker in [RARE_WORD, COMMON_WORD] {
                assert!(
                    !word.contains(marker) && !marker.contains(word),
                    "{word} vs {marker}"
                );
            }
        }
        // The metadata the loader writes must not match either marker.
        for key in ["source", "bench", "lang", "en", "n", "bench-api"] {
            assert!(!key.contains(RARE_WORD) && !key.contains(COMMON_WORD));
        }
    }

    #[test]
    fn words_are_distinct() {
        let mut words = WORDS.to_vec();
        words.sort();
        words.dedup();
        assert_eq!(words.len(), WORDS.len());
    }

    #[test]
    fn api_bodies_vary_and_carry_the_markers_as_often_as_the_loaded_facts() {
        assert_ne!(fact_body(1), fact_body(2));
        let seeds = 0..RARE_EVERY as u64;
        let with = |word: &str| {
            seeds
                .clone()
                .filter(|&s| fact(s).text.contains(word))
                .count()
        };
        assert_eq!(with(COMMON_WORD) as i64, RARE_EVERY / COMMON_EVERY);
        assert_eq!(with(RARE_WORD), 1);
    }
}
