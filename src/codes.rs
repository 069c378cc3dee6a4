//! Op codes the shaders switch on, declared once: `op_codes!` gives an enum explicit
//! discriminants, an `ALL` list and names, and `gpu::kernels::wgsl_constants` exports every
//! code to WGSL as a constant (`BINARY_ADD`, `POOL_MAX`). A leaf: it imports nothing.

/// A fieldless op enum with an explicit code per variant, its `ALL` list and its names. The
/// codes are exported to WGSL as `const {PREFIX}_{NAME}: u32` (the name upper-cased), so a
/// shader says `case BINARY_ADD` and the code lives in one place.
macro_rules! op_codes {
    ($(#[$meta:meta])* $vis:vis enum $name:ident ($prefix:literal) {
        $($(#[$vmeta:meta])* $variant:ident = $code:literal => $label:literal,)*
    }) => {
        $(#[$meta])*
        #[repr(u32)]
        $vis enum $name {
            $($(#[$vmeta])* $variant = $code,)*
        }

        impl $name {
            /// Every variant, for the WGSL constants and the tests.
            pub(crate) const ALL: &'static [$name] = &[$($name::$variant),*];
            /// The prefix of this enum's WGSL constants.
            pub(crate) const WGSL_PREFIX: &'static str = $prefix;

            /// The code the shaders switch on (the explicit discriminant).
            pub(crate) fn code(self) -> u32 {
                self as u32
            }

            /// The op's name, as errors and the WGSL constants spell it.
            pub(crate) fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)*
                }
            }
        }
    };
}
pub(crate) use op_codes;
