//! YAML anchors, aliases and merge keys (`&defaults`, `*defaults`, `<<: *defaults`), which
//! LiteLLM configs use to share parameters between models. The line-tracking parser does
//! not resolve them, so such a file is first expanded here (aliases copied in place, merge
//! keys applied) and the expanded text is what gets parsed.

use yaml_rust2::yaml::Hash;
use yaml_rust2::{Yaml, YamlEmitter, YamlLoader};

/// The config with every alias and merge key resolved, as YAML text.
pub(crate) fn expand(src: &str) -> Result<String, String> {
    let docs = YamlLoader::load_from_str(src).map_err(|e| e.to_string())?;
    let doc = docs.into_iter().next().unwrap_or(Yaml::Null);
    let doc = merge(doc);
    let mut out = String::new();
    YamlEmitter::new(&mut out)
        .dump(&doc)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// Applies `<<` merge keys: keys written in the mapping win over merged ones, and of
/// several merged mappings the first wins (the YAML merge-key rules).
fn merge(node: Yaml) -> Yaml {
    match node {
        Yaml::Hash(hash) => {
            let merge_key = Yaml::String("<<".into());
            let mut own = Hash::new();
            let mut merged: Vec<Hash> = Vec::new();
            for (k, v) in hash {
                if k == merge_key {
                    match merge(v) {
                        Yaml::Hash(h) => merged.push(h),
                        Yaml::Array(items) => {
                            merged.extend(items.into_iter().filter_map(|i| match i {
                                Yaml::Hash(h) => Some(h),
                                _ => None,
                            }))
                        }
                        _ => {}
                    }
                } else {
                    own.insert(k, merge(v));
                }
            }
            for source in merged {
                for (k, v) in source {
                    if !own.contains_key(&k) {
                        own.insert(k, v);
                    }
                }
            }
            Yaml::Hash(own)
        }
        Yaml::Array(items) => Yaml::Array(items.into_iter().map(merge).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_merge_keys_are_expanded() {
        let src = "defaults: &d\n  api_key: k\n  timeout: 30\nmodel_list:\n  - model_name: a\n    litellm_params:\n      <<: *d\n      model: openai/a\n      timeout: 5\n  - model_name: b\n    litellm_params: *d\n";
        let out = expand(src).unwrap();
        let doc = &YamlLoader::load_from_str(&out).unwrap()[0];
        let a = &doc["model_list"][0]["litellm_params"];
        assert_eq!(a["api_key"].as_str(), Some("k"));
        assert_eq!(a["timeout"].as_i64(), Some(5), "the mapping's own key wins");
        assert_eq!(
            doc["model_list"][1]["litellm_params"]["timeout"].as_i64(),
            Some(30)
        );
        assert!(!out.contains('&') && !out.contains('*') && !out.contains("<<"));
    }
}
