# Project-wide warnings (STYLE.md, "Build"). -Werror is always on.
set(DS_WARNINGS
    -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
    -Wformat=2 -Wvla -Wunused-result)

function(ds_warnings target)
    target_compile_options(${target} PRIVATE ${DS_WARNINGS})
endfunction()
