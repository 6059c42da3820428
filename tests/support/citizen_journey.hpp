#pragma once

#include <map>
#include <string>

namespace townhall::testing {

// The demo accounts' passwords (email -> password) from what `townhall serve --demo`
// printed when it created them ("  <label>: <email>  password: <password>").
std::map<std::string, std::string> demo_passwords(const std::string& output);

// The citizen journey the product exists for, through one front door as a browser would
// walk it, on the demo data (its staff signed in with `passwords`): register -> verified by
// the administrator -> apply for a renovation permit -> its fee invoiced -> paid -> reviewed
// -> a permit; book the priced tennis court -> pay -> confirmed; cancel -> refunded.
// The same journey runs against a single process and against nginx in front of a split
// deployment (tests/integration/journey_test.cpp, tests/split/split_test.cpp): what a step
// leaves to the bus is waited for by asking the API, with a deadline. Reports failures
// through GoogleTest; `citizen_email` must be new to the installation.
void walk_the_citizen_journey(unsigned short front_door, const std::map<std::string, std::string>& passwords,
                              const std::string& citizen_email);

}  // namespace townhall::testing
