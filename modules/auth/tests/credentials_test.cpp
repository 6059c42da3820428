// Credential primitives of the auth module (modules/auth/src/credentials.hpp).
#include "credentials.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <set>

#include "support.hpp"

namespace townhall::auth {
namespace {

TEST(Passwords, HashVerifiesOnlyTheRightPassword) {
  auto hash = hash_password("correct horse battery");
  EXPECT_TRUE(hash.starts_with("$argon2id$v=19$m=32768,t=3,p=1$")) << hash;
  EXPECT_TRUE(verify_password(hash, "correct horse battery"));
  EXPECT_FALSE(verify_password(hash, "correct horse battery "));
  EXPECT_FALSE(verify_password(hash, ""));
  EXPECT_FALSE(verify_password("not a hash", "correct horse battery"));
  EXPECT_NE(hash, hash_password("correct horse battery"));  // salted
  EXPECT_FALSE(verify_password_of_nobody("correct horse battery"));
}

TEST(Passwords, Policy) {
  EXPECT_TRUE(check_password_policy("long enough pass", "maria@example.org"));
  EXPECT_FALSE(check_password_policy("short", "maria@example.org"));
  EXPECT_FALSE(check_password_policy("ÄÖÜäöüß", "maria@example.org"));  // 7 characters, 14 bytes
  EXPECT_TRUE(check_password_policy("ÄÖÜäöüßÄÖÜ", "maria@example.org"));
  EXPECT_FALSE(check_password_policy("Maria@Example.org", "maria@example.org"));
  EXPECT_FALSE(check_password_policy(std::string(257, 'x'), "maria@example.org"));
}

TEST(Tokens, RandomUrlSafeAndOnlyTheirHashIsKept) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    auto token = new_session_token();
    EXPECT_EQ(token.size(), 43u);
    EXPECT_EQ(token.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
              std::string::npos);
    EXPECT_TRUE(seen.insert(token).second);
  }
  auto token = new_session_token();
  EXPECT_EQ(token_hash(token).size(), 64u);
  EXPECT_EQ(token_hash(token), token_hash(token));
  EXPECT_NE(token_hash(token), token_hash(new_session_token()));
  EXPECT_EQ(token_hash(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(SecretBox, KeyFileIsCreatedPrivateAndReused) {
  testing::TempDir dir;
  auto key_file = dir.path() / "auth.key";
  auto box = SecretBox::load_or_create(key_file);
  struct stat info {};
  ASSERT_EQ(::stat(key_file.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  EXPECT_EQ(info.st_size, 32);

  auto sealed = box.seal("AB-123456-C");
  EXPECT_EQ(sealed.find("AB-123456-C"), std::string::npos);                    // not in plain text
  EXPECT_EQ(SecretBox::load_or_create(key_file).open(sealed), "AB-123456-C");  // same key on reload
  EXPECT_NE(box.seal("AB-123456-C"), sealed);                                  // fresh nonce each time

  auto tampered = sealed;
  tampered.back() ^= 1;
  EXPECT_EQ(box.open(tampered), std::nullopt);
  EXPECT_EQ(box.open("short"), std::nullopt);
  testing::TempDir other;
  EXPECT_EQ(SecretBox::load_or_create(other.path() / "auth.key").open(sealed), std::nullopt);
}

TEST(SecretBox, RefusesKeyFilesOthersCanReadOrOfTheWrongSize) {
  testing::TempDir dir;
  auto key_file = dir.path() / "auth.key";
  SecretBox::load_or_create(key_file);
  ::chmod(key_file.c_str(), 0644);
  EXPECT_THROW(SecretBox::load_or_create(key_file), std::runtime_error);
  auto short_key = dir.path() / "short.key";
  std::ofstream(short_key) << "too short";
  ::chmod(short_key.c_str(), 0600);
  EXPECT_THROW(SecretBox::load_or_create(short_key), std::runtime_error);
}

}  // namespace
}  // namespace townhall::auth
