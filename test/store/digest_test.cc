#include <catch2/catch.hpp>

#include "store/digest.h"

using lm::Digest;

TEST_CASE("SHA-256 matches the FIPS 180-2 test vectors", "[digest]") {
  CHECK(Digest::Of("abc").Hex() ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(Digest::Of("").Hex() ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  lm::Sha256Stream s;
  s.Update("a", 1);
  s.Update("bc", 2);
  CHECK(s.Finish() == Digest::Of("abc"));
}

TEST_CASE("Digest hex round trip and validation", "[digest]") {
  Digest d = Digest::Of("livemount");
  Digest back;
  REQUIRE(Digest::FromHex(d.Hex(), &back));
  CHECK(back == d);
  CHECK_FALSE(Digest::FromHex("abc", &back));
  CHECK_FALSE(Digest::FromHex(std::string(64, 'g'), &back));
  CHECK(Digest{}.IsZero());
  CHECK_FALSE(d.IsZero());
}

TEST_CASE("IsAllZero checks every byte, including an unaligned tail", "[digest]") {
  std::string z(131075, '\0');
  CHECK(lm::IsAllZero(z.data(), z.size()));
  z[131074] = 1;
  CHECK_FALSE(lm::IsAllZero(z.data(), z.size()));
  z[131074] = 0;
  z[3] = 1;
  CHECK_FALSE(lm::IsAllZero(z.data(), z.size()));
  CHECK(lm::IsAllZero(z.data() + 4, z.size() - 4));
}
