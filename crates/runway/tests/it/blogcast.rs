//! The blogcast example as a user runs it: its own config file, real espeak-ng and sox. A
//! three-paragraph post becomes one episode whose length is the sum of its paragraphs.

use std::process::Command;

use runway_api::SubmitJobRequest;
use runway_client::Client;
use serde_json::json;

use crate::{Server, finished};

/// Downloads an artifact into the test's directory and returns its path.
async fn download(server: &Server, client: &Client, id: &str, name: &str, file: &str) -> String {
    let bytes = client
        .artifact(id, name)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let path = server.path(file);
    std::fs::write(&path, bytes).unwrap();
    path.display().to_string()
}

fn seconds(wav: &str) -> f64 {
    let output = Command::new("soxi").args(["-D", wav]).output().unwrap();
    assert!(output.status.success(), "soxi failed on {wav}");
    String::from_utf8(output.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The largest sample's magnitude, 0 for silence (`sox FILE -n stat` reports on stderr).
fn loudest(wav: &str) -> f64 {
    let output = Command::new("sox")
        .args([wav, "-n", "stat"])
        .output()
        .unwrap();
    let report = String::from_utf8(output.stderr).unwrap();
    let line = report
        .lines()
        .find(|line| line.starts_with("Maximum amplitude"))
        .unwrap_or_else(|| panic!("no amplitude in {report}"));
    line.rsplit(':').next().unwrap().trim().parse().unwrap()
}

#[tokio::test]
async fn a_three_paragraph_post_becomes_one_episode_as_long_as_its_paragraphs() {
    let server = Server::start_example("examples/blogcast/runway.toml");
    let client = server.client();
    let post = client
        .submit(&SubmitJobRequest {
            job_type: "blogcast".into(),
            input: json!({
                "title": "Trees",
                "text": "runway runs job trees.\n\nEach paragraph is read on its own.\n  \nThen the episode is joined.",
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let post = finished(&client, &post.id).await;
    assert_eq!(post.status, "succeeded", "{:?}", post.error);
    let output = post.output.unwrap();
    assert_eq!(output["paragraphs"], 3);
    let paragraphs = client.tree(&post.id, None, 10).await.unwrap().children;
    assert_eq!(paragraphs.len(), 3);
    let mut total = 0.0;
    for (index, paragraph) in paragraphs.iter().enumerate() {
        assert_eq!(paragraph.queue, "gpu");
        assert_eq!(
            paragraph.key.as_deref(),
            Some((index + 1).to_string().as_str())
        );
        let wav = download(
            &server,
            &client,
            &paragraph.id,
            "paragraph.wav",
            &format!("{index}.wav"),
        )
        .await;
        let length = seconds(&wav);
        assert!(length > 0.5, "paragraph {index} is {length} s long");
        total += length;
    }
    let episode = download(&server, &client, &post.id, "episode.wav", "episode.wav").await;
    let length = seconds(&episode);
    assert!(
        (length - total).abs() < 0.01,
        "the episode is {length} s, its paragraphs {total} s"
    );
    assert!((output["seconds"].as_f64().unwrap() - length).abs() < 0.01);
    assert!(loudest(&episode) > 0.05, "the episode is not silent");
    let listed = client.artifacts(&post.id).await.unwrap().artifacts;
    assert_eq!(listed[0].content_type, "audio/wav");
}

#[tokio::test]
async fn a_post_without_text_is_refused_by_the_schema() {
    let server = Server::start_example("examples/blogcast/runway.toml");
    let refused = server
        .client()
        .submit(&SubmitJobRequest {
            job_type: "blogcast".into(),
            input: json!({"title": "Empty"}),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(422));
    assert!(refused.to_string().contains("text"), "{refused}");
}
