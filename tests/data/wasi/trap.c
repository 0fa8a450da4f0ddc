/* trap: a program that fails with a trap after some output (built with -g: the trap names this line). */
#include <stdio.h>

static int divide(int a, int b) { return a / b; }

int main(int argc, char **argv) {
    (void)argv;
    printf("before the trap\n");
    fflush(stdout);
    return divide(10, argc - 1);
}
