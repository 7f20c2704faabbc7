// Redis standalone specifics, against real redis-server processes: credentials, a server that is
// down or frozen, reconnection, key expiry, the stored layout, databases and projects.
#include "granary/online/redis/redis_store.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "granary/online/online_store.h"
#include "granary/online/redis/entity_value.h"
#include "granary/testing/online_definitions.h"
#include "granary/testing/online_store_fixture.h"
#include "granary/testing/redis_server.h"

namespace granary {
namespace {

using testing::MakeRows;
using testing::MakeViewRead;
using testing::RedisReply;
using testing::RedisServer;
using testing::RedisServerOptions;
using testing::Row;

const Timestamp kT0 = Timestamp::FromSeconds(1'800'000'000);

class RedisStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    defs_ = testing::OnlineDefinitions();
    layouts_ = MakeViewLayouts(defs_, Duration::Days(90)).ValueOrDie();
  }
  RedisOnlineStore::Options OptionsFor(const RedisServer& server, const std::string& project) {
    RedisOnlineStore::Options o;
    o.nodes = {server.address()};
    o.project = project;
    o.clock = &clock_;
    return o;
  }
  std::unique_ptr<RedisOnlineStore> Open(RedisOnlineStore::Options o) {
    auto store = RedisOnlineStore::Open(std::move(o));
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(*store) : nullptr;
  }
  Status WriteBay(OnlineStore& store, const std::string& bay, Timestamp event,
                  std::shared_ptr<const ViewLayout> view = nullptr) {
    if (view == nullptr) view = layouts_.at("bay_stats");
    auto rows = MakeRows(*view, {Row{{Value(bay)}, event, {}, {Value(0.5)}}});
    return store.WriteBatch(*view, *rows).status();
  }
  Result<OnlineFeatures> ReadBay(OnlineStore& store, const std::string& bay) {
    OnlineReadRequest request;
    request.views.push_back(MakeViewRead(layouts_.at("bay_stats"), {{Value(bay)}}));
    return store.Read(request);
  }
  static std::string BayKey(const RedisOnlineStore& store, const std::string& bay) {
    std::string key;
    entity_key::AppendString(&key, bay);
    return store.KeyOf(key);
  }

  Definitions defs_;
  ViewLayouts layouts_;
  ManualClock clock_{kT0};
};

TEST_F(RedisStoreTest, AuthenticatesAsAnAclUserWithItsPassword) {
  RedisServerOptions server_options;
  server_options.password = "admin-pw";
  server_options.acl_users = {{"granary", "on >s3cret ~* &* +@all"}};
  auto server = RedisServer::Start(server_options).ValueOrDie();
  auto o = OptionsFor(*server, "acl");
  o.username = "granary";
  o.password = "s3cret";
  auto store = Open(o);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(WriteBay(*store, "A", kT0).ok());
  EXPECT_EQ(ReadBay(*store, "A")->status(0, 0, 0), FeatureStatus::kPresent);
  EXPECT_NE(server->Check({"CLIENT", "LIST"})->str.find("user=granary"), std::string::npos);
}

TEST_F(RedisStoreTest, AWrongPasswordIsAClearErrorAtOpen) {
  RedisServerOptions server_options;
  server_options.password = "right";
  auto server = RedisServer::Start(server_options).ValueOrDie();
  auto o = OptionsFor(*server, "p");
  o.password = "wrong";
  auto store = RedisOnlineStore::Open(o);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(store.status().message().find("redis at " + server->address() +
                                          " refused the credentials (WRONGPASS"),
            std::string::npos)
      << store.status().ToString();
  EXPECT_NE(store.status().message().find("online_store.username and password"), std::string::npos);
  o.password = "";
  EXPECT_NE(RedisOnlineStore::Open(o).status().message().find("NOAUTH"), std::string::npos);
}

TEST_F(RedisStoreTest, AServerThatIsDownIsUnavailableNamingIt) {
  auto server = RedisServer::Start().ValueOrDie();
  auto store = Open(OptionsFor(*server, "down"));
  ASSERT_NE(store, nullptr);
  const std::string address = server->address();
  server->Stop();
  auto read = ReadBay(*store, "A");
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(read.status().message().find(address), std::string::npos) << read.status().ToString();
  EXPECT_EQ(WriteBay(*store, "A", kT0).code(), StatusCode::kUnavailable);

  auto never = RedisOnlineStore::Open(OptionsFor(*server, "down"));
  ASSERT_FALSE(never.ok());
  EXPECT_NE(never.status().message().find("cannot connect to redis at " + address),
            std::string::npos)
      << never.status().ToString();
}

TEST_F(RedisStoreTest, AFrozenServerTimesOutInsteadOfHangingAndIsUsedAgainAfter) {
  auto server = RedisServer::Start().ValueOrDie();
  auto o = OptionsFor(*server, "frozen");
  o.request_timeout = Duration::Microseconds(300'000);
  auto store = Open(o);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(WriteBay(*store, "A", kT0).ok());
  server->Pause();  // accepts connections, answers nothing
  auto read = ReadBay(*store, "A");
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(read.status().message().find("sent no reply within 300 ms"), std::string::npos)
      << read.status().ToString();
  server->Resume();
  Result<OnlineFeatures> again = Status::Internal("not read");
  for (int attempt = 0; attempt < 50 && !again.ok(); ++attempt) {
    again = ReadBay(*store, "A");  // the node may still be in its reconnect backoff
    if (!again.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->status(0, 0, 0), FeatureStatus::kPresent);
}

TEST_F(RedisStoreTest, GranaryYamlTimeoutsWinOverTheCallersAndTheErrorNamesTheSetting) {
  auto server = RedisServer::Start().ValueOrDie();
  auto yaml = testing::GranaryYamlRedisStore("redis", {server->address()}, &clock_);
  yaml.config.online_store.request_timeout = Duration::Microseconds(300'000);
  auto store = OpenOnlineStore(yaml.config, yaml.options);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_TRUE(WriteBay(**store, "A", kT0).ok());
  server->Pause();
  auto read = ReadBay(**store, "A");  // 120 s would outlast the test's own timeout
  server->Resume();
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(read.status().message().find("redis at " + server->address() +
                                         " sent no reply within 300 ms (its request_timeout); if "
                                         "the server is only slow, raise "
                                         "online_store.request_timeout in granary.yaml"),
            std::string::npos)
      << read.status().ToString();
}

TEST_F(RedisStoreTest, GranaryYamlsConnectTimeoutBoundsAConnectThatIsNeverAnswered) {
  // A listening socket with a backlog of 0 that never accepts: once one connection waits in its
  // queue, Linux drops the SYNs of the next ones, which then wait for an answer that never comes.
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(listener, 0), 0);
  socklen_t length = sizeof address;
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const int filler = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(::connect(filler, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  // Two more, not waited for, in case a kernel queues one beyond the backlog.
  int extra[2];
  for (int& fd : extra) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    (void)::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  }
  const std::string where = "127.0.0.1:" + std::to_string(ntohs(address.sin_port));

  auto yaml = testing::GranaryYamlRedisStore("redis", {where});
  yaml.config.online_store.connect_timeout = Duration::Microseconds(300'000);
  auto store = OpenOnlineStore(yaml.config, yaml.options);
  for (int fd : extra) ::close(fd);
  ::close(filler);
  ::close(listener);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(store.status().message().find("cannot connect to redis at " + where +
                                          ": no answer within 300 ms "
                                          "(online_store.connect_timeout in granary.yaml)"),
            std::string::npos)
      << store.status().ToString();
}

TEST_F(RedisStoreTest, KilledConnectionsAreReopenedTransparently) {
  auto server = RedisServer::Start().ValueOrDie();
  auto store = Open(OptionsFor(*server, "kill"));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(WriteBay(*store, "A", kT0).ok());
  ASSERT_TRUE(server->Check({"CLIENT", "KILL", "TYPE", "normal"}).ok());
  const int64_t opened = store->stats().connections_opened.load();
  for (int i = 0; i < 3; ++i) {
    auto read = ReadBay(*store, "A");
    ASSERT_TRUE(read.ok()) << read.status().ToString();
    EXPECT_EQ(read->status(0, 0, 0), FeatureStatus::kPresent);
  }
  EXPECT_EQ(store->stats().connections_opened.load(), opened + 1);  // one new connection
}

TEST_F(RedisStoreTest, EveryWriteRefreshesTheKeyExpiryAndKeysExpire) {
  auto server = RedisServer::Start().ValueOrDie();
  auto store = Open(OptionsFor(*server, "ttl"));
  ASSERT_NE(store, nullptr);
  const std::string key = BayKey(*store, "A");
  const int64_t two_hours_ms = 2 * 3600 * 1000;  // bay_stats' online_key_ttl
  ASSERT_TRUE(WriteBay(*store, "A", kT0).ok());
  int64_t pttl = server->Check({"PTTL", key})->integer;
  EXPECT_GT(pttl, two_hours_ms - 60'000);
  EXPECT_LE(pttl, two_hours_ms);

  // A skipped (older) write refreshes the expiry too (Feast's issue #3275).
  ASSERT_TRUE(server->Check({"PEXPIRE", key, "5000"}).ok());
  ASSERT_TRUE(WriteBay(*store, "A", kT0 - Duration::Hours(1)).ok());
  EXPECT_GT(server->Check({"PTTL", key})->integer, two_hours_ms - 60'000);

  // A view with a longer key_ttl keeps the key longer; a shorter one never shortens it.
  auto every = layouts_.at("every_type");  // key_ttl: the store default, 90 days
  auto rows = MakeRows(*every, {Row{{Value(int64_t{1})}, kT0, {}, testing::EveryTypeValues(1)}});
  ASSERT_TRUE(store->WriteBatch(*every, *rows).ok());
  const std::string customer_key = [&] {
    std::string k;
    entity_key::AppendInteger(&k, 1);
    return store->KeyOf(k);
  }();
  EXPECT_GT(server->Check({"PTTL", customer_key})->integer, int64_t{89} * 24 * 3600 * 1000);

  // key_ttl 0: the key never expires, and a later view with a ttl does not change that.
  auto forever = ViewLayout::Make(defs_, *defs_.FindFeatureView("bay_stats"), {}).ValueOrDie();
  Definitions no_view_ttl = defs_;
  no_view_ttl.feature_views[2].online_key_ttl = {};
  forever = ViewLayout::Make(no_view_ttl, no_view_ttl.feature_views[2], Duration()).ValueOrDie();
  ASSERT_TRUE(WriteBay(*store, "B", kT0, forever).ok());
  EXPECT_EQ(server->Check({"PTTL", BayKey(*store, "B")})->integer, -1);
  ASSERT_TRUE(WriteBay(*store, "B", kT0 + Duration::Seconds(1)).ok());
  EXPECT_EQ(server->Check({"PTTL", BayKey(*store, "B")})->integer, -1);

  // A short key_ttl: the entity is gone once it passes (Redis's own clock).
  auto short_lived =
      ViewLayout::Make(no_view_ttl, no_view_ttl.feature_views[2], Duration::Microseconds(200'000))
          .ValueOrDie();
  ASSERT_TRUE(WriteBay(*store, "C", kT0, short_lived).ok());
  EXPECT_EQ(ReadBay(*store, "C")->status(0, 0, 0), FeatureStatus::kPresent);
  FeatureStatus status = FeatureStatus::kPresent;
  for (int i = 0; i < 200 && status == FeatureStatus::kPresent; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    status = ReadBay(*store, "C")->status(0, 0, 0);
  }
  EXPECT_EQ(status, FeatureStatus::kNotFound);
}

TEST_F(RedisStoreTest, OneKeyPerEntityHoldsEveryViewAsASection) {
  auto server = RedisServer::Start().ValueOrDie();
  auto store = Open(OptionsFor(*server, "layout"));
  ASSERT_NE(store, nullptr);
  auto risk = layouts_.at("risk");
  auto every = layouts_.at("every_type");
  ASSERT_TRUE(
      store
          ->WriteBatch(
              *risk,
              *MakeRows(*risk,
                        {Row{{Value(int64_t{7})}, kT0, {}, {Value(0.5), Value(int64_t{2})}}}))
          .ok());
  ASSERT_TRUE(
      store
          ->WriteBatch(
              *every,
              *MakeRows(*every, {Row{{Value(int64_t{7})}, kT0, {}, testing::EveryTypeValues(7)}}))
          .ok());
  EXPECT_EQ(server->Check({"DBSIZE"})->integer, 1);
  std::string entity;
  entity_key::AppendInteger(&entity, 7);
  EXPECT_EQ(store->KeyOf(entity), std::string("layout:\x01\x0e", 9));
  std::string value = server->Check({"GET", store->KeyOf(entity)})->str;
  std::string_view body;
  ASSERT_TRUE(redis::FindSection(value, risk->view_id(), &body).ok());
  EXPECT_EQ(body.size(), 4u + 8 + 1 + 1 + 16);  // fingerprint, event, created, nulls, 2 values
  ASSERT_TRUE(redis::FindSection(value, every->view_id(), &body).ok());
  EXPECT_FALSE(body.empty());

  // A foreign value under a Granary key is reported, not misread.
  ASSERT_TRUE(server->Check({"SET", store->KeyOf(entity), "not granary"}).ok());
  OnlineReadRequest request;
  request.views.push_back(MakeViewRead(risk, {{Value(int64_t{7})}}));
  auto read = store->Read(request);
  EXPECT_EQ(read.status().code(), StatusCode::kCorruption) << read.status().ToString();
  auto write = store->WriteBatch(
      *risk,
      *MakeRows(*risk, {Row{{Value(int64_t{7})}, kT0, {}, {Value(0.5), Value(int64_t{2})}}}));
  EXPECT_EQ(write.status().code(), StatusCode::kCorruption) << write.status().ToString();
}

TEST_F(RedisStoreTest, ProjectsAndDatabasesAreSeparate) {
  auto server = RedisServer::Start().ValueOrDie();
  auto a = Open(OptionsFor(*server, "alpha"));
  auto b = Open(OptionsFor(*server, "beta"));
  auto o = OptionsFor(*server, "alpha");
  o.db = 3;
  auto c = Open(o);
  ASSERT_TRUE(a && b && c);
  for (OnlineStore* s : {a.get(), b.get(), c.get()}) ASSERT_TRUE(WriteBay(*s, "A", kT0).ok());
  EXPECT_NE(server->Info("keyspace", "db3")->find("keys=1"), std::string::npos);
  ASSERT_TRUE(a->DeleteAll().ok());
  EXPECT_EQ(ReadBay(*a, "A")->status(0, 0, 0), FeatureStatus::kNotFound);
  EXPECT_EQ(ReadBay(*b, "A")->status(0, 0, 0), FeatureStatus::kPresent);
  EXPECT_EQ(ReadBay(*c, "A")->status(0, 0, 0), FeatureStatus::kPresent);
}

TEST_F(RedisStoreTest, ScriptsAreLoadedAgainAfterEveryScriptFlush) {
  auto server = RedisServer::Start().ValueOrDie();
  auto store = Open(OptionsFor(*server, "flush"));
  ASSERT_NE(store, nullptr);
  auto view = layouts_.at("bay_stats");
  // Each flush loses the scripts the connection loaded after the previous one.
  for (int flush = 0; flush < 3; ++flush) {
    SCOPED_TRACE("flush " + std::to_string(flush));
    ASSERT_TRUE(server->Check({"SCRIPT", "FLUSH"}).ok());
    std::vector<Row> rows;
    for (int i = 0; i < 500; ++i) {
      rows.push_back(Row{
          {Value("bay" + std::to_string(i))}, kT0 + Duration::Seconds(flush), {}, {Value(0.5)}});
    }
    auto stats = store->WriteBatch(*view, *MakeRows(*view, rows));
    ASSERT_TRUE(stats.ok()) << stats.status().ToString();
    EXPECT_EQ(stats->written, 500);
    ASSERT_TRUE(server->Check({"SCRIPT", "FLUSH"}).ok());
    ASSERT_TRUE(store->DeleteViews({"bay_stats"}).ok());
    EXPECT_EQ(server->Check({"DBSIZE"})->integer, 0);
  }
}

TEST_F(RedisStoreTest, PermissionAndMemoryRefusalsAreNotRetryableAndSayWhatToFix) {
  RedisServerOptions server_options;
  server_options.acl_users = {{"noscripts", "on >pw ~* &* +@all -@scripting"},
                              {"noget", "on >pw ~* &* +@all -get"}};
  auto server = RedisServer::Start(server_options).ValueOrDie();
  auto options = OptionsFor(*server, "refusals");
  options.password = "pw";
  // SCRIPT LOAD refused at open.
  options.username = "noscripts";
  auto refused = RedisOnlineStore::Open(options);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition)
      << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("may not run SCRIPT LOAD (NOPERM"), std::string::npos)
      << refused.status().message();
  EXPECT_NE(refused.status().message().find("ACL rules"), std::string::npos);
  // GET refused on a read.
  options.username = "noget";
  auto store = Open(options);
  ASSERT_NE(store, nullptr);
  auto read = ReadBay(*store, "A");
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), StatusCode::kFailedPrecondition) << read.status().ToString();
  EXPECT_NE(read.status().message().find("may not run GET"), std::string::npos)
      << read.status().message();
  // A new key is stored with SET NX, which this user may run; rewriting it takes the write
  // script, which meets the same ACL rule (GET inside the script).
  ASSERT_TRUE(WriteBay(*store, "A", kT0).ok());
  Status script_refused = WriteBay(*store, "A", kT0 + Duration::Seconds(1));
  ASSERT_FALSE(script_refused.ok());
  EXPECT_EQ(script_refused.code(), StatusCode::kFailedPrecondition) << script_refused.ToString();
  EXPECT_NE(script_refused.message().find("ACL rules"), std::string::npos)
      << script_refused.message();
  // Writes refused while the server is at maxmemory (a user who may write).
  options.username.clear();
  options.password.clear();
  store = Open(options);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(server->Check({"CONFIG", "SET", "maxmemory", "1"}).ok());
  Status full = WriteBay(*store, "A", kT0);
  ASSERT_TRUE(server->Check({"CONFIG", "SET", "maxmemory", "0"}).ok());
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.code(), StatusCode::kFailedPrecondition) << full.ToString();
  EXPECT_NE(full.message().find("out of memory"), std::string::npos) << full.message();
  EXPECT_NE(full.message().find("raise maxmemory"), std::string::npos) << full.message();
  // The same for a new key (SET NX rather than the script).
  ASSERT_TRUE(server->Check({"CONFIG", "SET", "maxmemory", "1"}).ok());
  Status full_new = WriteBay(*store, "B", kT0);
  ASSERT_TRUE(server->Check({"CONFIG", "SET", "maxmemory", "0"}).ok());
  EXPECT_EQ(full_new.code(), StatusCode::kFailedPrecondition) << full_new.ToString();
  EXPECT_NE(full_new.message().find("raise maxmemory"), std::string::npos) << full_new.message();
  EXPECT_TRUE(WriteBay(*store, "A", kT0).ok());
}

int64_t ConnectedClients(const RedisServer& server) {
  auto clients = server.Info("clients", "connected_clients");
  EXPECT_TRUE(clients.ok()) << clients.status().ToString();
  return clients.ok() ? std::stoll(*clients) : -1;
}

TEST_F(RedisStoreTest, AThreadKeepsOneSessionPerStoreAndExitedThreadsReleaseTheirs) {
  auto server = RedisServer::Start().ValueOrDie();
  auto a = Open(OptionsFor(*server, "a"));
  auto b = Open(OptionsFor(*server, "b"));
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(WriteBay(*a, "A", kT0).ok());
  ASSERT_TRUE(WriteBay(*b, "A", kT0).ok());
  // Counted with the fixture's own connection, which INFO opens for itself.
  const int64_t baseline = ConnectedClients(*server);
  // One thread switching between two stores reuses its session of each.
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(ReadBay(*a, "A").ok());
    ASSERT_TRUE(ReadBay(*b, "A").ok());
  }
  EXPECT_EQ(ConnectedClients(*server), baseline);
  EXPECT_EQ(a->thread_sessions(), 1u);
  EXPECT_EQ(b->thread_sessions(), 1u);

  // Threads that made calls and exited leave no session (nor connection) behind.
  for (int t = 0; t < 20; ++t) {
    std::thread worker([&] {
      EXPECT_TRUE(ReadBay(*a, "A").ok());
      EXPECT_TRUE(WriteBay(*b, "B", kT0).ok());
    });
    worker.join();
  }
  EXPECT_EQ(a->thread_sessions(), 1u);
  EXPECT_EQ(b->thread_sessions(), 1u);
  // The server notices the closed sockets on its own schedule: wait for it (bounded).
  int64_t clients = ConnectedClients(*server);
  for (int i = 0; i < 200 && clients != baseline; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    clients = ConnectedClients(*server);
  }
  EXPECT_EQ(clients, baseline);
  // A store destroyed before a thread that used it exits: the thread's exit finds it gone.
  std::atomic<bool> used{false}, release{false};
  std::thread late([&] {
    EXPECT_TRUE(ReadBay(*b, "A").ok());
    used = true;
    while (!release) std::this_thread::yield();
  });
  while (!used) std::this_thread::yield();
  b.reset();
  release = true;
  late.join();
  EXPECT_TRUE(ReadBay(*a, "A").ok());
}

TEST(RedisConnectionString, ParsesOptionsAndRejectsUnknownOnes) {
  RedisOnlineStore::Options o;
  ASSERT_TRUE(
      RedisOnlineStore::ParseConnectionString("redis.local:6380,password=p=w,username=u,db=2", &o)
          .ok());
  EXPECT_EQ(o.nodes, std::vector<std::string>{"redis.local:6380"});
  EXPECT_EQ(o.password, "p=w");
  EXPECT_EQ(o.username, "u");
  EXPECT_EQ(o.db, 2);
  Status bad = RedisOnlineStore::ParseConnectionString("h:1,ssl=true", &o);
  EXPECT_NE(bad.message().find("unknown option 'ssl'"), std::string::npos) << bad.ToString();
  EXPECT_NE(
      RedisOnlineStore::ParseConnectionString("localhost", &o).message().find("write host:port"),
      std::string::npos);
  EXPECT_FALSE(RedisOnlineStore::ParseConnectionString("h:1,db=x", &o).ok());
}

}  // namespace
}  // namespace granary
