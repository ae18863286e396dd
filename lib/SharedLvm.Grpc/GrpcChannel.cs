using System.IO.Pipelines;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Runtime.CompilerServices;
using Google.Protobuf;

namespace SharedLvm.Grpc;

public sealed class GrpcChannelOptions
{
    public int MaxReceiveMessageSize { get; set; } = GrpcProtocol.DefaultMaxMessageSize;

    public int MaxSendMessageSize { get; set; } = GrpcProtocol.DefaultMaxMessageSize;

    /// <summary>TLS settings for https:// addresses (client certificate, CA validation).</summary>
    public SslClientAuthenticationOptions? Ssl { get; set; }

    /// <summary>Replaces the socket handler (tests: an in-memory TestServer handler).</summary>
    public HttpMessageHandler? HttpHandler { get; set; }

    /// <summary>Bounds connection establishment, so an unreachable node fails fast as UNAVAILABLE.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);
}

/// <summary>Per-call settings.</summary>
public sealed record CallOptions
{
    /// <summary>Relative deadline, sent as grpc-timeout and enforced locally.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>Custom metadata (HTTP/2 headers). Keys ending in -bin carry base64 values.</summary>
    public IReadOnlyDictionary<string, string>? Headers { get; init; }

    public CancellationToken CancellationToken { get; init; }
}

/// <summary>
/// A connection to one gRPC server over HTTP/2 (h2c for http://, TLS with ALPN for https://).
/// Thread-safe; calls multiplex over pooled connections.
/// </summary>
public sealed class GrpcChannel : IDisposable
{
    private static readonly string UserAgent = "sharedlvm-grpc/" + typeof(GrpcChannel).Assembly.GetName().Version;
    private readonly HttpMessageInvoker _invoker;
    private readonly GrpcChannelOptions _options;

    private GrpcChannel(Uri address, GrpcChannelOptions options)
    {
        Address = address;
        _options = options;
        var handler = options.HttpHandler ?? new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            ConnectTimeout = options.ConnectTimeout,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
            KeepAlivePingDelay = TimeSpan.FromSeconds(30),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(10),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
            SslOptions = options.Ssl ?? new SslClientAuthenticationOptions(),
        };
        _invoker = new HttpMessageInvoker(handler, disposeHandler: true);
    }

    public Uri Address { get; }

    public static GrpcChannel ForAddress(string address, GrpcChannelOptions? options = null) =>
        ForAddress(new Uri(address, UriKind.Absolute), options);

    public static GrpcChannel ForAddress(Uri address, GrpcChannelOptions? options = null)
    {
        if (address.Scheme != Uri.UriSchemeHttp && address.Scheme != Uri.UriSchemeHttps)
        {
            throw new ArgumentException($"gRPC address must be http:// or https://, got '{address}'.", nameof(address));
        }

        return new GrpcChannel(address, options ?? new GrpcChannelOptions());
    }

    public async Task<TResponse> UnaryAsync<TResponse>(GrpcMethod method, IMessage request, CallOptions? options = null)
        where TResponse : IMessage
    {
        options ??= new CallOptions();
        using var call = new ClientCall(this, method, options);
        try
        {
            using var response = await call.StartAsync(request).ConfigureAwait(false);
            var reader = await call.OpenBodyAsync(response).ConfigureAwait(false);
            var message = await call.ReadAsync(reader, response).ConfigureAwait(false);
            if (message is not null && await call.ReadAsync(reader, response).ConfigureAwait(false) is not null)
            {
                throw new RpcException(StatusCode.Internal, "Unary call returned more than one message.");
            }

            call.ThrowIfNotOk(call.GetTrailerStatus(response), response);
            return message is TResponse typed
                ? typed
                : throw new RpcException(StatusCode.Internal, "Unary call ended with OK but no response message.");
        }
        catch (Exception e) when (e is not RpcException)
        {
            throw call.Translate(e);
        }
    }

    public async IAsyncEnumerable<TResponse> ServerStreamingAsync<TResponse>(
        GrpcMethod method, IMessage request, CallOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
        where TResponse : IMessage
    {
        options ??= new CallOptions();
        if (cancellationToken.CanBeCanceled)
        {
            options = options with
            {
                CancellationToken = options.CancellationToken.CanBeCanceled
                    ? CancellationTokenSource.CreateLinkedTokenSource(options.CancellationToken, cancellationToken).Token
                    : cancellationToken,
            };
        }

        using var call = new ClientCall(this, method, options);
        HttpResponseMessage response;
        PipeReader reader;
        try
        {
            response = await call.StartAsync(request).ConfigureAwait(false);
            reader = await call.OpenBodyAsync(response).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not RpcException)
        {
            throw call.Translate(e);
        }

        using (response)
        {
            while (true)
            {
                IMessage? message;
                try
                {
                    message = await call.ReadAsync(reader, response).ConfigureAwait(false);
                    if (message is null)
                    {
                        call.ThrowIfNotOk(call.GetTrailerStatus(response), response);
                        yield break;
                    }
                }
                catch (Exception e) when (e is not RpcException)
                {
                    throw call.Translate(e);
                }

                yield return (TResponse)message;
            }
        }
    }

    public void Dispose() => _invoker.Dispose();

    /// <summary>State of one call: its cancellation, deadline and the status decoding.</summary>
    private sealed class ClientCall : IDisposable
    {
        private readonly GrpcChannel _channel;
        private readonly GrpcMethod _method;
        private readonly CallOptions _options;
        private readonly CancellationTokenSource? _deadlineCts;
        private readonly CancellationTokenSource _callCts;

        public ClientCall(GrpcChannel channel, GrpcMethod method, CallOptions options)
        {
            _channel = channel;
            _method = method;
            _options = options;
            if (options.Timeout is { } timeout)
            {
                _deadlineCts = new CancellationTokenSource(timeout <= TimeSpan.Zero ? TimeSpan.FromTicks(1) : timeout);
            }

            _callCts = _deadlineCts is null
                ? CancellationTokenSource.CreateLinkedTokenSource(options.CancellationToken)
                : CancellationTokenSource.CreateLinkedTokenSource(options.CancellationToken, _deadlineCts.Token);
        }

        private CancellationToken Token => _callCts.Token;

        public async Task<HttpResponseMessage> StartAsync(IMessage request)
        {
            var content = new ByteArrayContent(MessageFraming.Frame(request, _channel._options.MaxSendMessageSize));
            content.Headers.ContentType = new MediaTypeHeaderValue(GrpcProtocol.ContentType);
            var message = new HttpRequestMessage(HttpMethod.Post, new Uri(_channel.Address, _method.Path))
            {
                Version = HttpVersion.Version20,
                VersionPolicy = HttpVersionPolicy.RequestVersionExact,
                Content = content,
            };
            message.Headers.TE.Add(new TransferCodingWithQualityHeaderValue("trailers"));
            message.Headers.TryAddWithoutValidation("user-agent", UserAgent);
            message.Headers.TryAddWithoutValidation(GrpcProtocol.AcceptEncodingHeader, GrpcProtocol.SupportedEncodings);
            if (_options.Timeout is { } timeout)
            {
                message.Headers.TryAddWithoutValidation(GrpcProtocol.TimeoutHeader, GrpcProtocol.FormatTimeout(timeout));
            }

            foreach (var (key, value) in _options.Headers ?? new Dictionary<string, string>())
            {
                message.Headers.TryAddWithoutValidation(key, value);
            }

            var response = await _channel._invoker.SendAsync(message, Token).ConfigureAwait(false);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                var code = GrpcProtocol.FromHttpStatus((int)response.StatusCode);
                response.Dispose();
                throw new RpcException(code, $"Bad gRPC response. HTTP status code: {(int)response.StatusCode}.");
            }

            // Trailers-only response: the status is in the headers and there is no body.
            if (ReadStatus(response.Headers) is { } headerStatus)
            {
                using (response)
                {
                    ThrowIfNotOk(headerStatus, response);
                    throw new RpcException(StatusCode.Internal, "Call ended with OK in a trailers-only response but returned no message.");
                }
            }

            if (!GrpcProtocol.IsGrpcContentType(response.Content.Headers.ContentType?.MediaType))
            {
                response.Dispose();
                throw new RpcException(StatusCode.Internal,
                    $"Bad gRPC response. Invalid content-type value: {response.Content.Headers.ContentType}.");
            }

            return response;
        }

        public async Task<PipeReader> OpenBodyAsync(HttpResponseMessage response) =>
            PipeReader.Create(await response.Content.ReadAsStreamAsync(Token).ConfigureAwait(false));

        public ValueTask<IMessage?> ReadAsync(PipeReader reader, HttpResponseMessage response)
        {
            var encoding = response.Headers.TryGetValues(GrpcProtocol.EncodingHeader, out var values) ? values.FirstOrDefault() : null;
            return MessageFraming.ReadMessageAsync(reader, _method.ResponseParser, _channel._options.MaxReceiveMessageSize, encoding, Token);
        }

        public Status GetTrailerStatus(HttpResponseMessage response) =>
            ReadStatus(response.TrailingHeaders)
            ?? new Status(StatusCode.Unknown, "No grpc-status found on response.");

        public void ThrowIfNotOk(Status status, HttpResponseMessage response)
        {
            if (status.Code == StatusCode.OK)
            {
                return;
            }

            var trailers = response.TrailingHeaders.Concat(response.Headers)
                .Where(h => !h.Key.StartsWith("grpc-", StringComparison.OrdinalIgnoreCase))
                .GroupBy(h => h.Key, StringComparer.OrdinalIgnoreCase)
                .ToDictionary(g => g.Key.ToLowerInvariant(), g => string.Join(",", g.First().Value), StringComparer.Ordinal);
            throw new RpcException(status) { Trailers = trailers };
        }

        /// <summary>Maps transport and cancellation failures to the status a gRPC client reports.</summary>
        public RpcException Translate(Exception e)
        {
            if (e is OperationCanceledException or IOException && _deadlineCts?.IsCancellationRequested == true)
            {
                return new RpcException(new Status(StatusCode.DeadlineExceeded, "Deadline Exceeded"), e);
            }

            if (e is OperationCanceledException or IOException && _options.CancellationToken.IsCancellationRequested)
            {
                return new RpcException(new Status(StatusCode.Cancelled, "Call canceled by the client."), e);
            }

            return e switch
            {
                HttpRequestException or IOException =>
                    new RpcException(new Status(StatusCode.Unavailable, $"Error talking to {_channel.Address.Authority}: {e.Message}"), e),
                _ => new RpcException(new Status(StatusCode.Internal, $"Error in {_method.Path}: {e.Message}"), e),
            };
        }

        public void Dispose()
        {
            _callCts.Dispose();
            _deadlineCts?.Dispose();
        }

        private static Status? ReadStatus(HttpHeaders headers)
        {
            if (!headers.TryGetValues(GrpcProtocol.StatusHeader, out var statusValues))
            {
                return null;
            }

            var raw = statusValues.FirstOrDefault();
            if (!int.TryParse(raw, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var code))
            {
                return new Status(StatusCode.Unknown, $"Unexpected grpc-status value '{raw}'.");
            }

            var detail = headers.TryGetValues(GrpcProtocol.MessageHeader, out var messageValues)
                ? GrpcProtocol.DecodeMessage(messageValues.FirstOrDefault())
                : string.Empty;
            return new Status((StatusCode)code, detail);
        }
    }
}
