//! The fact list's additions: full-text search, any_tag, metadata filters, time bounds, keyset
//! paging, count modes, bulk create and tag counts.

mod common;

use std::collections::HashSet;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn fact(app: &TestApp, body: Value) -> Value {
    let (status, fact) = app.post("/api/v1/facts", body).await;
    assert_eq!(status, StatusCode::OK, "{fact}");
    fact
}

async fn list(app: &TestApp, query: &str) -> Value {
    let (status, page) = app.get(&format!("/api/v1/facts?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{query}: {page}");
    page
}

fn texts(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["text"].as_str().unwrap().to_string())
        .collect()
}

async fn error_locs(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = app.get(&format!("/api/v1/facts?{query}")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
    body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["loc"].clone())
        .collect()
}

both_backends!(full_text_search_matches_word_forms_and_ranks_text_above_metadata);
async fn full_text_search_matches_word_forms_and_ranks_text_above_metadata() {
    let app = TestApp::without_workers().await;
    fact(
        &app,
        json!({"text": "unrelated", "meta_data": {"note": "she runs daily"}}),
    )
    .await;
    fact(&app, json!({"text": "The dogs were running in the park"})).await;
    fact(&app, json!({"text": "Cats sleep all day"})).await;

    let page = list(&app, "search=run").await;
    assert_eq!(
        texts(&page),
        ["The dogs were running in the park", "unrelated"]
    );
    let ranks: Vec<f64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rank"].as_f64().unwrap())
        .collect();
    assert!(ranks[0] > ranks[1], "{ranks:?}");
    assert_eq!(page["total"], 2);
    assert!(page.get("next_cursor").is_none());
}

both_backends!(full_text_search_understands_phrases_and_exclusions);
async fn full_text_search_understands_phrases_and_exclusions() {
    let app = TestApp::without_workers().await;
    fact(&app, json!({"text": "red apples and green pears"})).await;
    fact(&app, json!({"text": "green apples"})).await;
    assert_eq!(
        texts(&list(&app, "search=apples+-pears").await),
        ["green apples"]
    );
    assert_eq!(
        texts(&list(&app, "search=%22green+apples%22").await),
        ["green apples"]
    );
}

both_backends!(a_plain_list_carries_no_rank);
async fn a_plain_list_carries_no_rank() {
    let app = TestApp::without_workers().await;
    fact(&app, json!({"text": "x"})).await;
    let page = list(&app, "").await;
    assert!(page["items"][0].get("rank").is_none());
    let keys: Vec<&String> = page.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["total", "items"],
        "the contract's shape, nothing more"
    );
}

both_backends!(any_tag_matches_facts_with_at_least_one_of_the_tags);
async fn any_tag_matches_facts_with_at_least_one_of_the_tags() {
    let app = TestApp::without_workers().await;
    fact(&app, json!({"text": "a", "tags": ["red"]})).await;
    fact(&app, json!({"text": "b", "tags": ["blue", "green"]})).await;
    fact(&app, json!({"text": "c", "tags": ["yellow"]})).await;
    assert_eq!(
        texts(&list(&app, "any_tag=red&any_tag=green").await),
        ["b", "a"]
    );
    assert_eq!(
        texts(&list(&app, "any_tag=red&any_tag=green&tag=blue").await),
        ["b"]
    );
}

both_backends!(metadata_filters_match_top_level_values_and_contain_nested_ones);
async fn metadata_filters_match_top_level_values_and_contain_nested_ones() {
    let app = TestApp::without_workers().await;
    fact(
        &app,
        json!({"text": "n5", "meta_data": {"count": 5, "source": "book"}}),
    )
    .await;
    fact(
        &app,
        json!({"text": "s5", "meta_data": {"count": "5", "source": "web"}}),
    )
    .await;
    fact(
        &app,
        json!({"text": "nested", "meta_data": {"author": {"name": "Ada", "born": 1815}, "source": "book"}}),
    )
    .await;
    assert_eq!(
        texts(&list(&app, "meta.source=book").await),
        ["nested", "n5"]
    );
    assert_eq!(texts(&list(&app, "meta.count=5").await), ["s5", "n5"]);
    assert_eq!(texts(&list(&app, "meta.count=%225%22").await), ["s5"]);
    assert_eq!(
        texts(&list(&app, "meta.author=%7B%22name%22%3A%22Ada%22%7D").await),
        ["nested"]
    );
    assert_eq!(
        texts(&list(&app, "meta.source=book&meta.count=5").await),
        ["n5"]
    );
    assert!(texts(&list(&app, "meta.missing=1").await).is_empty());
}

both_backends!(created_after_and_before_bound_the_list);
async fn created_after_and_before_bound_the_list() {
    let app = TestApp::without_workers().await;
    let first = fact(&app, json!({"text": "first"})).await;
    let second = fact(&app, json!({"text": "second"})).await;
    let third = fact(&app, json!({"text": "third"})).await;
    let after = first["created_at"].as_str().unwrap();
    let before = third["created_at"].as_str().unwrap();
    let page = list(
        &app,
        &format!("created_after={after}&created_before={before}"),
    )
    .await;
    assert_eq!(texts(&page), ["second"]);
    assert_eq!(page["items"][0]["id"], second["id"]);
}

both_backends!(keyset_pages_visit_every_fact_once_while_new_facts_arrive);
async fn keyset_pages_visit_every_fact_once_while_new_facts_arrive() {
    let app = TestApp::without_workers().await;
    let mut expected = HashSet::new();
    for n in 0..25 {
        expected.insert(fact(&app, json!({"text": format!("old {n}")})).await["id"].clone());
    }
    let mut seen = Vec::new();
    let mut query = "limit=7".to_string();
    loop {
        let page = list(&app, &query).await;
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["id"].clone()),
        );
        // Newer facts arrive between pages: they belong before the cursor, not in later pages.
        fact(&app, json!({"text": "new"})).await;
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("limit=7&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25, "a fact was repeated or skipped");
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), expected);
}

both_backends!(a_malformed_cursor_or_one_combined_with_search_is_refused);
async fn a_malformed_cursor_or_one_combined_with_search_is_refused() {
    let app = TestApp::without_workers().await;
    assert_eq!(
        error_locs(&app, "cursor=nonsense").await,
        [json!(["query", "cursor"])]
    );
    assert_eq!(
        error_locs(
            &app,
            "cursor=1764331200123456_0f8e2c4a1b3d4e5f8a9b0c1d2e3f4a5b&search=x"
        )
        .await,
        [json!(["query", "cursor"])]
    );
}

both_backends!(count_estimate_is_exact_for_small_results_and_count_none_omits_the_total);
async fn count_estimate_is_exact_for_small_results_and_count_none_omits_the_total() {
    let app = TestApp::without_workers().await;
    for n in 0..3 {
        fact(&app, json!({"text": format!("fact {n}")})).await;
    }
    let estimate = list(&app, "count=estimate").await;
    assert_eq!(estimate["total"], 3);
    assert!(estimate.get("total_is_estimate").is_none());
    let none = list(&app, "count=none&limit=2").await;
    assert_eq!(none["total"], Value::Null);
    assert_eq!(none["items"].as_array().unwrap().len(), 2);
}

both_backends!(malformed_additions_are_each_a_422_naming_the_parameter);
async fn malformed_additions_are_each_a_422_naming_the_parameter() {
    let app = TestApp::without_workers().await;
    let locs = error_locs(
        &app,
        "count=all&created_after=yesterday&created_before=2026-13-01&meta.=x",
    )
    .await;
    assert_eq!(
        locs,
        [
            json!(["query", "meta."]),
            json!(["query", "created_after"]),
            json!(["query", "created_before"]),
            json!(["query", "count"]),
        ]
    );
}

both_backends!(ten_thousand_facts_are_created_in_one_bulk_request);
async fn ten_thousand_facts_are_created_in_one_bulk_request() {
    let app = TestApp::without_workers().await;
    let facts: Vec<Value> = (0..10_000)
        .map(|n| json!({"text": format!("bulk {n}"), "tags": ["bulk"], "meta_data": {"n": n}}))
        .collect();
    let (status, created) = app
        .post("/api/v1/facts/bulk", json!({ "facts": facts }))
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["created"], 10_000);
    assert_eq!(created["ids"].as_array().unwrap().len(), 10_000);
    let first = created["ids"][0].as_str().unwrap();
    let (_, stored) = app.get(&format!("/api/v1/facts/{first}")).await;
    assert_eq!(stored["text"], "bulk 0");
    assert_eq!(list(&app, "tag=bulk&limit=1").await["total"], 10_000);
}

both_backends!(a_bulk_request_with_one_bad_item_stores_nothing_and_names_each_problem);
async fn a_bulk_request_with_one_bad_item_stores_nothing_and_names_each_problem() {
    let app = TestApp::without_workers().await;
    let mut facts: Vec<Value> = (0..100)
        .map(|n| json!({"text": format!("ok {n}")}))
        .collect();
    facts[17] = json!({"tags": ["no text"]});
    facts[42] = json!({"text": "x", "tags": "not a list"});
    facts[50] = json!("not an object");
    let (status, body) = app
        .post("/api/v1/facts/bulk", json!({ "facts": facts }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let locs: Vec<Value> = body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["loc"].clone())
        .collect();
    assert_eq!(
        locs,
        [
            json!(["body", "facts", 17, "text"]),
            json!(["body", "facts", 42, "tags"]),
            json!(["body", "facts", 50]),
        ]
    );
    assert_eq!(list(&app, "").await["total"], 0);
}

both_backends!(a_bulk_request_must_hold_one_to_ten_thousand_facts);
async fn a_bulk_request_must_hold_one_to_ten_thousand_facts() {
    let app = TestApp::without_workers().await;
    for body in [
        json!({"facts": []}),
        json!({"facts": vec![json!({"text": "x"}); 10_001]}),
        json!({"facts": {"text": "x"}}),
        json!({}),
    ] {
        let (status, answer) = app.post("/api/v1/facts/bulk", body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["detail"][0]["loc"], json!(["body", "facts"]));
    }
}

both_backends!(tags_are_listed_with_their_counts_most_used_first);
async fn tags_are_listed_with_their_counts_most_used_first() {
    let app = TestApp::without_workers().await;
    fact(&app, json!({"text": "a", "tags": ["astro", "physics"]})).await;
    fact(&app, json!({"text": "b", "tags": ["astro"]})).await;
    fact(&app, json!({"text": "c", "tags": ["biology", "astro"]})).await;
    let (status, tags) = app.get("/api/v1/tags").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        tags["items"],
        json!([
            {"tag": "astro", "count": 3},
            {"tag": "biology", "count": 1},
            {"tag": "physics", "count": 1}
        ])
    );
    let (_, some) = app.get("/api/v1/tags?prefix=ph&limit=5").await;
    assert_eq!(some["items"], json!([{"tag": "physics", "count": 1}]));
    let (status, _) = app.get("/api/v1/tags?limit=0").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

both_backends!(count_estimate_over_ten_thousand_matches_is_flagged_as_an_estimate);
async fn count_estimate_over_ten_thousand_matches_is_flagged_as_an_estimate() {
    let app = TestApp::without_workers().await;
    for batch in 0..2 {
        let facts: Vec<Value> = (0..6_000)
            .map(|n| json!({"text": format!("common word {batch}-{n}")}))
            .collect();
        let (status, _) = app
            .post("/api/v1/facts/bulk", json!({ "facts": facts }))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let page = list(&app, "q=common&count=estimate&limit=5").await;
    assert_eq!(page["total_is_estimate"], true);
    assert!(
        page["total"].as_i64().unwrap() > 10_000,
        "{}",
        page["total"]
    );
    assert_eq!(page["items"].as_array().unwrap().len(), 5);
    let exact = list(&app, "q=common&limit=5").await;
    assert_eq!(exact["total"], 12_000);
    assert!(exact.get("total_is_estimate").is_none());
}

postgres_only!(the_search_language_can_be_changed_and_rebuilds_the_index);
async fn the_search_language_can_be_changed_and_rebuilds_the_index() {
    let db = std::sync::Arc::new(TestDb::postgres().await);
    let app = TestApp::on(db.clone(), None, Default::default()).await;
    fact(&app, json!({"text": "Die Häuser sind groß"})).await;
    assert!(
        texts(&list(&app, "search=Haus").await).is_empty(),
        "English does not stem German"
    );

    let store = db.pg_store().await;
    use seedcore::store::Store;
    assert!(store.set_search_language("german").await.unwrap());
    assert!(
        !store.set_search_language("german").await.unwrap(),
        "already german"
    );
    assert_eq!(
        texts(&list(&app, "search=Haus").await),
        ["Die Häuser sind groß"]
    );
    // New facts are indexed in the new language too.
    fact(&app, json!({"text": "Ein kleines Haus"})).await;
    assert_eq!(list(&app, "search=H%C3%A4user").await["total"], 2);
    assert!(store.set_search_language("klingon").await.is_err());
}

both_backends!(full_text_search_follows_a_facts_edits_and_its_deletion);
async fn full_text_search_follows_a_facts_edits_and_its_deletion() {
    let app = TestApp::without_workers().await;
    let id = fact(&app, json!({"text": "a river in spring"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    fact(&app, json!({"text": "a quiet lake"})).await;
    assert_eq!(
        texts(&list(&app, "search=river").await),
        ["a river in spring"]
    );

    let path = format!("/api/v1/facts/{id}");
    let (status, _) = app.patch(&path, json!({"text": "a mountain pass"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list(&app, "search=river").await["total"], 0);
    assert_eq!(
        texts(&list(&app, "search=mountain").await),
        ["a mountain pass"]
    );

    let (status, _) = app
        .patch(&path, json!({"meta_data": {"region": "glacier country"}}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        texts(&list(&app, "search=glacier").await),
        ["a mountain pass"]
    );
    let (status, _) = app.patch(&path, json!({"tags": ["geo"]})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        texts(&list(&app, "search=mountain&tag=geo").await),
        ["a mountain pass"],
        "a tag-only edit keeps the vector"
    );

    let (status, _) = app.delete(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list(&app, "search=mountain").await["total"], 0);
    assert_eq!(texts(&list(&app, "search=lake").await), ["a quiet lake"]);
}

both_backends!(full_text_matches_of_equal_rank_come_newest_first_and_page_by_offset);
async fn full_text_matches_of_equal_rank_come_newest_first_and_page_by_offset() {
    let app = TestApp::without_workers().await;
    for (text, tags) in [
        ("first comet", ["sky"]),
        ("second comet", ["sea"]),
        ("third comet", ["sky"]),
    ] {
        fact(&app, json!({"text": text, "tags": tags})).await;
        // Creation times a clear step apart, so the order cannot depend on a tie.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(
        texts(&list(&app, "search=comet").await),
        ["third comet", "second comet", "first comet"]
    );
    assert_eq!(
        texts(&list(&app, "search=comet&limit=1&offset=1").await),
        ["second comet"]
    );
    let tagged = list(&app, "search=comet&tag=sky&limit=1&offset=1").await;
    assert_eq!(texts(&tagged), ["first comet"]);
    assert_eq!(tagged["total"], 2);
    assert_eq!(
        list(&app, "search=comet&any_tag=sea&any_tag=none").await["total"],
        1
    );
    let newest = list(&app, "search=comet&limit=1").await["items"][0]["created_at"].clone();
    let newest = newest.as_str().unwrap();
    let before = list(&app, &format!("search=comet&created_before={newest}")).await;
    assert_eq!(texts(&before), ["second comet", "first comet"]);
    assert_eq!(
        texts(&list(&app, "search=comet&q=SECOND").await),
        ["second comet"],
        "search= with q reads the facts too"
    );
}

both_backends!(a_text_search_pages_its_matches_newest_first_by_cursor_and_by_offset);
async fn a_text_search_pages_its_matches_newest_first_by_cursor_and_by_offset() {
    let app = TestApp::without_workers().await;
    let mut matching = Vec::new();
    let mut matching_even = Vec::new();
    for n in 0..12 {
        let text = if n % 3 == 0 {
            format!("a quetzal seen, {n}")
        } else {
            format!("nothing seen, {n}")
        };
        let tag = if n % 2 == 0 { "even" } else { "odd" };
        fact(&app, json!({"text": text, "tags": [tag]})).await;
        if n % 3 == 0 {
            matching.insert(0, text.clone());
            if n % 2 == 0 {
                matching_even.insert(0, text);
            }
        }
    }
    let mut seen = Vec::new();
    let mut query = "q=QUETZAL&limit=3".to_string();
    loop {
        let page = list(&app, &query).await;
        assert_eq!(page["total"], 4);
        seen.extend(texts(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("q=QUETZAL&limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, matching);
    assert_eq!(
        texts(&list(&app, "q=quetzal&limit=2&offset=1").await),
        matching[1..3]
    );
    assert_eq!(
        texts(&list(&app, "q=quetzal&tag=even").await),
        matching_even
    );
}
