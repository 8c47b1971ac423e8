/*  tests/unit/test_arena.c - the bounded bump allocator: the cap holds,
    every block is aligned and zeroed, and destroy accepts NULL. */
#include "protocol/arena.h"

#include <setjmp.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void test_allocations_never_exceed_the_cap(void **state)
{
    (void)state;
    static const size_t caps[] = {0, 1, 16, 100, 4095, 4096, 4097, 20000};
    static const size_t sizes[] = {0, 1, 7, 16, 17, 100, 4096, 5000};
    for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
        ds_arena_t *a = ds_arena_new(caps[c]);
        assert_non_null(a);
        /* Keep allocating in a fixed rotation until the arena refuses
           every size; it must never hand out more than the cap. */
        for (int round = 0; round < 64; round++) {
            void *p = ds_arena_alloc(a, sizes[(size_t)round % (sizeof sizes / sizeof sizes[0])]);
            (void)p;
            assert_true(ds_arena_used(a) <= caps[c]);
        }
        ds_arena_destroy(&a);
    }
}

static void test_alloc_fails_exactly_when_the_cap_would_be_passed(void **state)
{
    (void)state;
    size_t unit = alignof(max_align_t);
    ds_arena_t *a = ds_arena_new(4 * unit);
    assert_non_null(a);
    assert_non_null(ds_arena_alloc(a, 3 * unit));
    assert_null(ds_arena_alloc(a, unit + 1)); /* rounds up to 2 units: over */
    assert_int_equal(ds_arena_used(a), 3 * unit);
    assert_non_null(ds_arena_alloc(a, unit)); /* exactly fills the cap */
    assert_int_equal(ds_arena_used(a), 4 * unit);
    assert_null(ds_arena_alloc(a, 0)); /* even an empty request costs a unit */
    ds_arena_destroy(&a);
}

static void test_every_block_is_aligned_for_any_type(void **state)
{
    (void)state;
    ds_arena_t *a = ds_arena_new(1u << 20);
    assert_non_null(a);
    for (size_t size = 0; size < 300; size++) {
        void *p = ds_arena_alloc(a, size);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % alignof(max_align_t), 0);
    }
    /* A block larger than the arena's default block size. */
    void *big = ds_arena_alloc(a, 10000);
    assert_non_null(big);
    assert_int_equal((uintptr_t)big % alignof(max_align_t), 0);
    ds_arena_destroy(&a);
}

static void test_blocks_are_zeroed_even_on_reused_memory(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 15, 16, 33, 1000, 4096, 9000};
    for (int pass = 0; pass < 2; pass++) {
        /* Pass 0 dirties the heap, pass 1 is likely to get it back. */
        ds_arena_t *a = ds_arena_new(1u << 20);
        assert_non_null(a);
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            unsigned char *p = ds_arena_alloc(a, sizes[i]);
            assert_non_null(p);
            for (size_t j = 0; j < sizes[i]; j++)
                assert_int_equal(p[j], 0);
            memset(p, 0xa5, sizes[i]);
        }
        ds_arena_destroy(&a);
    }
}

static void test_blocks_do_not_overlap(void **state)
{
    (void)state;
    enum { N = 200 };
    unsigned char *ptrs[N];
    ds_arena_t *a = ds_arena_new(1u << 20);
    assert_non_null(a);
    for (size_t i = 0; i < N; i++) {
        ptrs[i] = ds_arena_alloc(a, 1 + i * 37 % 5000);
        assert_non_null(ptrs[i]);
        memset(ptrs[i], (int)(i & 0xff), 1 + i * 37 % 5000);
    }
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < 1 + i * 37 % 5000; j++)
            assert_int_equal(ptrs[i][j], i & 0xff);
    ds_arena_destroy(&a);
}

static void test_destroy_accepts_null_and_clears_the_pointer(void **state)
{
    (void)state;
    ds_arena_t *a = NULL;
    ds_arena_destroy(&a);
    assert_null(a);
    a = ds_arena_new(64);
    assert_non_null(a);
    assert_int_equal(ds_arena_used(a), 0);
    ds_arena_destroy(&a);
    assert_null(a);
    ds_arena_destroy(&a); /* twice is harmless */
}

/*  With an unlimited cap, a request near SIZE_MAX must fail cleanly: the
    block header added to the size must not wrap around to a tiny malloc. */
static void test_huge_request_fails_without_wrapping(void **state)
{
    (void)state;
    static const size_t sizes[] = {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 15, SIZE_MAX - 16,
                                   SIZE_MAX - 31};
    ds_arena_t *a = ds_arena_new(SIZE_MAX);
    assert_non_null(a);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        assert_null(ds_arena_alloc(a, sizes[i]));
    assert_non_null(ds_arena_alloc(a, 8)); /* still usable */
    ds_arena_destroy(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allocations_never_exceed_the_cap),
        cmocka_unit_test(test_alloc_fails_exactly_when_the_cap_would_be_passed),
        cmocka_unit_test(test_every_block_is_aligned_for_any_type),
        cmocka_unit_test(test_blocks_are_zeroed_even_on_reused_memory),
        cmocka_unit_test(test_blocks_do_not_overlap),
        cmocka_unit_test(test_destroy_accepts_null_and_clears_the_pointer),
        cmocka_unit_test(test_huge_request_fails_without_wrapping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
