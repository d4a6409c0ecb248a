#pragma once

namespace billsync::daemon {

// The billsync command line: run, validate, status, version, sandbox.
int main(int argc, char** argv);

}  // namespace billsync::daemon
