//! `fault_kinds!`: the one list of fault kinds makes everything that names
//! them all: [`FaultKind`](super::FaultKind), [`FaultKindName`](super::FaultKindName)
//! (with `ALL`, `as_str`, `acts_on`), the file form's one key per kind, and
//! the dispatch of [`Kind`](super::kind::Kind)'s checks and decisions to
//! each kind's own file.

/// `key: Variant(Type),` per kind, each with its doc line.
macro_rules! fault_kinds {
    ($( $(#[doc = $doc:literal])* $key:ident : $variant:ident($ty:ty), )*) => {
        /// The kinds of fault, each documented in its own type.
        #[derive(Debug, Clone, PartialEq)]
        pub enum FaultKind {
            $( $(#[doc = $doc])* $variant($ty), )*
        }

        /// The name of a fault kind.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum FaultKindName {
            $( #[doc = concat!("`", stringify!($key), "`")] $variant, )*
        }

        /// How many kinds there are.
        const KINDS: usize = [$(stringify!($key)),*].len();

        impl FaultKindName {
            /// Every kind, in a fixed order.
            pub const ALL: [FaultKindName; KINDS] = [$(FaultKindName::$variant),*];

            /// The name as written in files.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( FaultKindName::$variant => stringify!($key), )*
                }
            }

            /// What it acts on.
            pub(crate) fn acts_on(self) -> ActsOn {
                match self {
                    $( FaultKindName::$variant => <$ty as Kind>::ACTS_ON, )*
                }
            }
        }

        impl FaultKind {
            /// The kind's name, as written in files and the journal.
            pub fn name(&self) -> FaultKindName {
                match self {
                    $( FaultKind::$variant(_) => FaultKindName::$variant, )*
                }
            }

            /// Its own checks ([`Kind::validate`]).
            fn validate(&self) -> Result<(), String> {
                match self {
                    $( FaultKind::$variant(kind) => kind.validate(), )*
                }
            }

            /// What it does to one HTTP call ([`Kind::decide`]).
            pub(crate) fn decide<R: rand::Rng + ?Sized>(&self, call: &mut kind::Call<'_, R>) -> bool {
                match self {
                    $( FaultKind::$variant(kind) => kind.decide(call), )*
                }
            }
        }

        $(
            impl From<$ty> for Fault {
                fn from(kind: $ty) -> Fault {
                    Fault::new(FaultKind::$variant(kind))
                }
            }

            impl $ty {
                /// As a fault drawn with probability `p` (0 to 1) for each
                /// call (on a TCP proxy, each connection): [`Fault::probability`].
                pub fn probability(self, p: f64) -> Fault {
                    Fault::from(self).probability(p)
                }

                /// As a fault applied to the first `n` calls it is drawn for: [`Fault::first`].
                pub fn first(self, n: u64) -> Fault {
                    Fault::from(self).first(n)
                }

                /// As a fault counted and drawn per request: [`Fault::per`].
                pub fn per(self, per: Per) -> Fault {
                    Fault::from(self).per(per)
                }

                /// As a fault for the calls `matcher` matches only: [`Fault::when`].
                pub fn when(self, matcher: RequestMatch) -> Fault {
                    Fault::from(self).when(matcher)
                }

                /// As a fault that removes itself after `lease`: [`Fault::lease`].
                pub fn lease(self, lease: Duration) -> Fault {
                    Fault::from(self).lease(lease)
                }

                /// As a fault named `name`: [`Fault::named`].
                pub fn named(self, name: impl Into<String>) -> Fault {
                    Fault::from(self).named(name)
                }

                /// As a TCP proxy's fault on this direction: [`Fault::stream`].
                pub fn stream(self, stream: Stream) -> Fault {
                    Fault::from(self).stream(stream)
                }
            }
        )*

        /// The file and JSON form: one optional key per kind, exactly one of them set.
        #[derive(Default, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawFault {
            $(
                #[serde(default, skip_serializing_if = "Option::is_none")]
                $key: Option<$ty>,
            )*
            #[serde(default, skip_serializing_if = "Option::is_none")]
            stream: Option<Stream>,
            #[serde(default = "always", skip_serializing_if = "is_always")]
            probability: f64,
            #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
            matcher: Option<RequestMatch>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            first: Option<u64>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            per: Option<Per>,
            #[serde(
                default,
                with = "humantime_serde::option",
                skip_serializing_if = "Option::is_none"
            )]
            lease: Option<Duration>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            name: Option<String>,
        }

        impl RawFault {
            /// The kinds it names (one, in a valid fault).
            fn take_kinds(&mut self) -> Vec<FaultKind> {
                let mut kinds = Vec::new();
                $( kinds.extend(self.$key.take().map(FaultKind::$variant)); )*
                kinds
            }

            /// Names `kind`.
            fn set_kind(&mut self, kind: FaultKind) {
                match kind {
                    $( FaultKind::$variant(f) => self.$key = Some(f), )*
                }
            }
        }
    };
}
