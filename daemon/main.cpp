#include "daemon/cli.hpp"

int main(int argc, char** argv) { return billsync::daemon::main(argc, argv); }
