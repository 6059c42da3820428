#include "townhall/app/application.hpp"

int main(int argc, char** argv) { return townhall::app::run_cli(argc, argv); }
