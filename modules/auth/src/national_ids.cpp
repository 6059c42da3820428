// National ids: the key that seals them (auth.key against auth.db), sealing one with its
// digest, and the digests of ids sealed before digests existed.
#include <sodium.h>
#include <spdlog/spdlog.h>

#include "service_internal.hpp"
#include "townhall/platform/time.hpp"

namespace townhall::auth {

namespace {

Result<Unit> check_national_id(const std::string& value) {
  if (value.empty() || value.size() > 32)
    return make_error(Errc::invalid_argument, "field 'national_id': must be 1 to 32 characters");
  for (char c : value)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == ' '))
      return make_error(Errc::invalid_argument, "field 'national_id': only letters, digits, '-' and spaces");
  return Unit{};
}

// What makes two national ids the same: case, spaces and dashes do not count.
std::string canonical_national_id(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == ' ' || c == '-') continue;
    out.push_back(c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c);
  }
  return out;
}

}  // namespace

// The key file against the sealed data (issue 21): its key check value when auth.db has
// one, else one sealed national id. A key is created only where nothing was ever sealed:
// a new key beside sealed rows would read none of them and let a second citizen claim
// every national id on file (their digests would no longer match). A missing or foreign
// key leaves auth serving without national ids (503 naming the fix), never a 500.
void AuthService::open_key(db::Connection& service) {
  secrets_.reset();
  key_problem_.clear();
  auto stored = store::key_check_value(service);
  auto sample = stored ? std::nullopt : store::any_sealed_national_id(service);
  auto key = SecretBox::load(key_file_);  // throws for a readable-by-others or malformed file
  const auto restore_hint =
      "restore the auth.key that was backed up with this auth.db (townhall restore --from "
      "BACKUP_DIR --module auth installs both; a backup's manifest.json lists it), then restart";
  if (!key) {
    if (stored || sample) {
      key_problem_ =
          "the key file " + key_file_.string() +
          " is missing but auth.db holds national ids sealed with a key; no new key was created. Fix: " + restore_hint;
      return;
    }
    key = SecretBox::create(key_file_);
    spdlog::info("auth: created the key file {} (back it up with auth.db: townhall backup copies both)",
                 key_file_.string());
  }
  const auto check_value = key->check_value();
  const bool matches = stored ? stored->size() == check_value.size() &&
                                    sodium_memcmp(stored->data(), check_value.data(), check_value.size()) == 0
                              : !sample || key->open(*sample).has_value();
  if (!matches) {
    key_problem_ = "the key file " + key_file_.string() +
                   " does not match the national ids sealed in auth.db (its key check value differs: a key from "
                   "another installation or a newer one). Fix: " +
                   restore_hint;
    return;
  }
  if (!stored) store::insert_key_check_value(service, check_value, utc::now());
  secrets_ = std::move(*key);
}

Result<Unit> AuthService::key_usable() const {
  if (!secrets_) return make_error(Errc::unavailable, "national ids are unavailable: " + key_problem_);
  return Unit{};
}

Result<commands::SealedNationalId> AuthService::seal_national_id(const std::string& national_id) const {
  if (auto ok = check_national_id(national_id); !ok) return ok.error();
  if (auto ok = key_usable(); !ok) return ok.error();
  return commands::SealedNationalId{secrets_->seal(national_id), secrets_->digest(canonical_national_id(national_id))};
}

// National ids sealed before digests existed (auth migration 0002) get theirs; two
// active citizens already holding the same id keep the first's digest and are logged
// for staff to resolve.
void AuthService::backfill_national_id_digests(db::Connection& service) {
  int filled = 0;
  for (const auto& [id, sealed] : store::sealed_ids_without_digest(service, 1'000'000)) {
    auto plain = secrets_->open(sealed);
    if (!plain) {
      spdlog::error("auth: the national id of citizen {} cannot be decrypted (wrong key file?)", id);
      continue;
    }
    auto digest = secrets_->digest(canonical_national_id(*plain));
    auto row = store::find_citizen(service, id);
    if (row && row->citizen.identity_verified && store::verified_national_id_holder(service, digest, id)) {
      spdlog::warn(
          "auth: citizen {} holds, verified, a national id another verified citizen holds; staff must "
          "settle it",
          id);
      continue;
    }
    store::set_national_id_digest(service, id, digest);
    ++filled;
  }
  if (filled > 0) spdlog::info("auth: national id digests written for {} citizens", filled);
}

}  // namespace townhall::auth
