/* tests/fuzz/fuzz_filter.c - the poll/subscribe filter parser, then the
 * compiled filter evaluated on a few documents. Never crash. */
#include <stdlib.h>
#include <string.h>

#include <netmesh/bus.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) {
        return 0;
    }
    memcpy(s, data, size);
    s[size] = '\0';
    nm_filter *f = NULL;
    if (nm_filter_parse(s, &f) == 0) {
        static const char *docs[] = {
            "{\"a\":{\"b\":[1,2,{\"c\":true}]},\"kind\":\"x\",\"n\":1.5}",
            "[1,2,3]", "\"str\"", "not json"};
        for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
            (void)nm_filter_match(f, docs[i], strlen(docs[i]));
        }
        (void)nm_filter_match(f, data, size);
        nm_filter_free(f);
    }
    free(s);
    return 0;
}
