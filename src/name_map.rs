//! A small map from names to values, kept as one sorted list.
//!
//! A stage has a handful of inputs and outputs, and a plan of a large pipeline holds one
//! manifest and one key per stage. A `BTreeMap` allocates a node of eleven slots for a
//! single entry (a kilobyte for an output), where a list holds exactly what is there:
//! at 100,000 stages that is the difference between planning in fresh memory the kernel
//! must zero and planning in a fraction of it. Lookups are a binary search, iteration is
//! in name order, and the JSON form is an object with sorted keys, exactly as a
//! `BTreeMap`'s, so keys and manifests keep their bytes. (litemap, the crate made for
//! this, writes an empty map as `[]`, which would change the key of every stage without
//! inputs.)

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, PartialEq, Eq)]
pub struct NameMap<V>(Vec<(String, V)>);

impl<V> Default for NameMap<V> {
    fn default() -> NameMap<V> {
        NameMap(Vec::new())
    }
}

impl<V> NameMap<V> {
    pub fn new() -> NameMap<V> {
        NameMap::default()
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(n, _)| n.as_str().cmp(name))
    }

    pub fn get(&self, name: &str) -> Option<&V> {
        self.find(name).ok().map(|k| &self.0[k].1)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.find(name).is_ok()
    }

    /// Sets `name` to `value`; the value it had, if any.
    pub fn insert(&mut self, name: String, value: V) -> Option<V> {
        match self.find(&name) {
            Ok(k) => Some(std::mem::replace(&mut self.0[k].1, value)),
            Err(k) => {
                self.0.insert(k, (name, value));
                None
            }
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// In name order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&String, &V)> + ExactSizeIterator {
        self.0.iter().map(|(n, v)| (n, v))
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator {
        self.0.iter().map(|(n, _)| n)
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator {
        self.0.iter().map(|(_, v)| v)
    }
}

/// Later entries win over earlier ones of the same name, as with repeated inserts.
impl<V> FromIterator<(String, V)> for NameMap<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(items: I) -> NameMap<V> {
        let mut v: Vec<(String, V)> = items.into_iter().collect();
        // Stable: of equal names, the last one is kept below.
        v.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, V)> = Vec::with_capacity(v.len());
        for item in v {
            match out.last_mut() {
                Some(last) if last.0 == item.0 => *last = item,
                _ => out.push(item),
            }
        }
        NameMap(out)
    }
}

impl<V, const N: usize> From<[(String, V); N]> for NameMap<V> {
    fn from(items: [(String, V); N]) -> NameMap<V> {
        items.into_iter().collect()
    }
}

impl<V> IntoIterator for NameMap<V> {
    type Item = (String, V);
    type IntoIter = std::vec::IntoIter<(String, V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a, V> IntoIterator for &'a NameMap<V> {
    type Item = (&'a String, &'a V);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (String, V)>, fn(&'a (String, V)) -> (&'a String, &'a V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(n, v)| (n, v))
    }
}

impl<V> std::ops::Index<&str> for NameMap<V> {
    type Output = V;
    fn index(&self, name: &str) -> &V {
        self.get(name).unwrap_or_else(|| panic!("no entry named `{name}`"))
    }
}

impl<V: fmt::Debug> fmt::Debug for NameMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<V: Serialize> Serialize for NameMap<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (n, v) in &self.0 {
            map.serialize_entry(n, v)?;
        }
        map.end()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for NameMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<NameMap<V>, D::Error> {
        struct Items<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Items<V> {
            type Value = NameMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<NameMap<V>, A::Error> {
                let mut items = Vec::with_capacity(access.size_hint().unwrap_or(0).min(64));
                let mut sorted = true;
                while let Some((n, v)) = access.next_entry::<String, V>()? {
                    if let Some((last, _)) = items.last() {
                        sorted &= *last < n;
                    }
                    items.push((n, v));
                }
                // JSON does not say how many entries follow, so the list grew by
                // doubling: a plan holds one of these per stage, so keep what is used.
                items.shrink_to_fit();
                // What pipe writes is sorted already: no second pass over it.
                Ok(if sorted { NameMap(items) } else { items.into_iter().collect() })
            }
        }
        d.deserialize_map(Items(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_by_name_with_the_json_of_a_btreemap() {
        let items = [("b", 2), ("a", 1), ("c", 3), ("a", 4)];
        let m: NameMap<i32> = items.iter().map(|(n, v)| (n.to_string(), *v)).collect();
        let b: std::collections::BTreeMap<String, i32> = items.iter().map(|(n, v)| (n.to_string(), *v)).collect();
        assert_eq!(serde_json::to_string(&m).unwrap(), serde_json::to_string(&b).unwrap());
        assert_eq!(serde_json::to_string(&NameMap::<i32>::new()).unwrap(), "{}");
        assert_eq!((m.get("a"), m.get("z"), m.len()), (Some(&4), None, 3));
        let back: NameMap<i32> = serde_json::from_str(r#"{"z": 1, "b": 2, "a": 3}"#).unwrap();
        assert_eq!(back.keys().map(String::as_str).collect::<Vec<_>>(), ["a", "b", "z"]);
        let mut m = back;
        assert_eq!(m.insert("c".into(), 9), None);
        assert_eq!(m.insert("c".into(), 8), Some(9));
        assert_eq!(serde_json::to_string(&m).unwrap(), r#"{"a":3,"b":2,"c":8,"z":1}"#);
    }
}
