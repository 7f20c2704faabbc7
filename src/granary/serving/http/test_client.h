// A blocking HTTP/1.1 client over one keep-alive connection to 127.0.0.1, for tests of the HTTP
// server and the feature server. Not thread-safe: one per thread.
#pragma once

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <string>
#include <utility>
#include <vector>

namespace granary::http::testing {

class Client {
 public:
  using Response = boost::beast::http::response<boost::beast::http::string_body>;

  explicit Client(uint16_t port) : socket_(ioc_) {
    socket_.connect(
        boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
  }

  Response Send(boost::beast::http::verb method, const std::string& target,
                const std::string& body = "",
                const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    boost::beast::http::request<boost::beast::http::string_body> req(method, target, 11);
    req.set(boost::beast::http::field::host, "127.0.0.1");
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    boost::beast::http::write(socket_, req);
    return Read();
  }
  Response Get(const std::string& target) { return Send(boost::beast::http::verb::get, target); }
  Response Post(const std::string& target, const std::string& body) {
    return Send(boost::beast::http::verb::post, target, body,
                {{"Content-Type", "application/json"}});
  }

  void SendRaw(const std::string& bytes) {
    boost::asio::write(socket_, boost::asio::buffer(bytes));
  }

  // False when the write failed (the server closed the connection).
  bool TrySendRaw(const std::string& bytes) {
    boost::beast::error_code ec;
    boost::asio::write(socket_, boost::asio::buffer(bytes), ec);
    return !ec;
  }

  Response Read() {
    Response res;
    boost::beast::http::read(socket_, buffer_, res);
    return res;
  }

  // True when the server closed the connection (a read sees end of stream).
  bool ClosedByServer() {
    boost::beast::error_code ec;
    char byte;
    socket_.read_some(boost::asio::buffer(&byte, 1), ec);
    return ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset;
  }

 private:
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::socket socket_;
  boost::beast::flat_buffer buffer_;
};

}  // namespace granary::http::testing
