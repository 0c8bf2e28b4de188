//! The command line's names for the library's enumerations (`--format`, `--to`, `--preset`): clap's
//! `ValueEnum` is implemented here, so that the layers below the CLI know nothing of clap.

use clap::builder::PossibleValue;
use clap::ValueEnum;

use crate::data::dataset::Format;
use crate::model::preset::Preset;

/// Implements `ValueEnum` for a library enum: each variant with its command-line name and,
/// optionally, its help text.
macro_rules! value_enum {
    ($ty:path { $($variant:ident => $name:literal $(: $help:literal)?),+ $(,)? }) => {
        impl ValueEnum for $ty {
            fn value_variants<'a>() -> &'a [Self] {
                use $ty as This;
                &[$(This::$variant),+]
            }

            fn to_possible_value(&self) -> Option<PossibleValue> {
                use $ty as This;
                Some(match self {
                    $(This::$variant => PossibleValue::new($name)$(.help($help))?,)+
                })
            }
        }
    };
}

value_enum!(Format {
    Standard => "standard": "The standard dataset's JSON lines",
    Binary => "binary": "Our binary format (`.kds`)",
    Pickle => "pickle": "SED's preprocessed pickles (`.pkl` with `.pkl.index`), read only",
});

value_enum!(Preset {
    Paper => "paper",
    Tiny => "tiny",
});

#[cfg(test)]
mod tests {
    use super::*;

    /// The command-line names are the library's own names of the values.
    #[test]
    fn names_agree_with_the_library() {
        for preset in Preset::value_variants() {
            assert_eq!(
                preset.to_possible_value().unwrap().get_name(),
                preset.name()
            );
        }
        for format in Format::value_variants() {
            let name = format.to_possible_value().unwrap();
            assert_eq!(Format::from_str(name.get_name(), false), Ok(*format));
        }
        assert_eq!(Format::value_variants().len(), 3);
    }
}
