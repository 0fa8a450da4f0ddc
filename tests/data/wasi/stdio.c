/* stdio: arguments, environment, stdin to stdout, stderr, an exit status. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    printf("argc=%d\n", argc);
    for (int i = 1; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
    const char *greeting = getenv("GREETING");
    printf("GREETING=%s\n", greeting ? greeting : "(unset)");
    printf("MISSING=%s\n", getenv("MISSING") ? "set" : "(unset)");
    char line[256];
    int lines = 0;
    long bytes = 0;
    while (fgets(line, sizeof line, stdin)) {
        lines++;
        bytes += (long)strlen(line);
        for (char *p = line; *p; p++) *p = (char)toupper((unsigned char)*p);
        fputs(line, stdout);
    }
    printf("lines=%d bytes=%ld\n", lines, bytes);
    fprintf(stderr, "to stderr: %s\n", argc > 1 ? argv[1] : "nothing");
    fflush(stdout);
    return argc > 2 ? atoi(argv[2]) : 0;
}
