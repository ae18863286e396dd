using System.Diagnostics;
using Google.Protobuf;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using SharedLvm.Grpc.Security;

namespace SharedLvm.Grpc;

/// <summary>
/// Runs one gRPC call on an HTTP/2 request: validate, read the request message, invoke, write the
/// response, then the status. Every failure goes through one path that turns it into a status
/// (grpc-dotnet ServerCallHandlerBase): a handler can never crash the server or leak a stack trace.
/// </summary>
internal sealed class ServerCallHandler
{
    private readonly GrpcMethod _method;
    private readonly ServiceInvoker _invoker;
    private readonly GrpcServerOptions _options;
    private readonly ILogger _logger;
    private readonly IServerCallGate? _gate;

    public ServerCallHandler(GrpcMethod method, ServiceInvoker invoker, GrpcServerOptions options, ILogger logger, IServerCallGate? gate)
    {
        _method = method;
        _invoker = invoker;
        _options = options;
        _logger = logger;
        _gate = gate;
    }

    public async Task HandleCallAsync(HttpContext http)
    {
        if (!ValidateRequest(http))
        {
            return;
        }

        var started = Stopwatch.GetTimestamp();
        var deadline = GetDeadline(http);
        using var deadlineCts = deadline is { } d ? new CancellationTokenSource(Clamp(d - DateTimeOffset.UtcNow)) : null;
        using var callCts = deadlineCts is null
            ? CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted)
            : CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, deadlineCts.Token);
        var context = new ServerCallContext(http, _method, deadline, callCts.Token);

        http.Response.ContentType = GrpcProtocol.ContentType;
        http.Response.Headers[GrpcProtocol.AcceptEncodingHeader] = GrpcProtocol.SupportedEncodings;

        IMessage? request = null;
        Status status;
        try
        {
            var encoding = http.Request.Headers[GrpcProtocol.EncodingHeader].ToString();
            request = await MessageFraming.ReadMessageAsync(
                    http.Request.BodyReader, _method.RequestParser, _options.MaxReceiveMessageSize, encoding, callCts.Token)
                ?? throw new RpcException(StatusCode.Internal, "Request stream ended without a message.");
            if (await MessageFraming.ReadMessageAsync(
                    http.Request.BodyReader, _method.RequestParser, _options.MaxReceiveMessageSize, encoding, callCts.Token) is not null)
            {
                throw new RpcException(StatusCode.Internal, "Additional data after the request message.");
            }

            if (_gate is not null)
            {
                await _gate.AdmitAsync(context, request);
            }

            if (_method.Type == MethodType.Unary)
            {
                var response = await _invoker.InvokeUnaryAsync(http.RequestServices, request, context);
                callCts.Token.ThrowIfCancellationRequested();
                await MessageFraming.WriteMessageAsync(http.Response.BodyWriter, response, _options.MaxSendMessageSize, callCts.Token);
            }
            else
            {
                var writer = new ResponseStreamWriter(http, _options.MaxSendMessageSize, callCts.Token);
                await _invoker.InvokeStreamingAsync(http.RequestServices, request, writer, context);
            }

            status = Status.Ok;
        }
        catch (RpcException e)
        {
            status = e.Status;
            if (e.Status.Code is not StatusCode.Cancelled and not StatusCode.DeadlineExceeded)
            {
                GrpcServerLog.CallRefused(_logger, _method.Path, context.Caller, e.Status.Code, e.Status.Detail);
            }
        }
        catch (OperationCanceledException) when (deadlineCts?.IsCancellationRequested == true)
        {
            status = new Status(StatusCode.DeadlineExceeded, "Deadline Exceeded");
        }
        catch (Exception e) when (http.RequestAborted.IsCancellationRequested && e is OperationCanceledException or IOException)
        {
            // The client went away. Cancellation is not an error (grpc-dotnet logs it at debug).
            status = new Status(StatusCode.Cancelled, "Call canceled by the client.");
        }
        catch (Exception e)
        {
            GrpcServerLog.HandlerFailed(_logger, _method.Path, context.Caller, e);
            status = new Status(StatusCode.Internal, "Exception was thrown by handler.");
        }

        _gate?.Completed(context, request, status);
        WriteStatus(http, status, context.ResponseTrailers);
        var elapsed = Stopwatch.GetElapsedTime(started);
        GrpcServerMetrics.Record(_method.Path, status.Code, elapsed.TotalSeconds);
        GrpcServerLog.CallFinished(_logger, _method.Path, context.Caller, status.Code, elapsed.TotalMilliseconds);
    }

    /// <summary>HTTP-level checks before anything gRPC: wrong protocol or content type.</summary>
    internal static bool ValidateRequest(HttpContext http)
    {
        if (!HttpMethods.IsPost(http.Request.Method))
        {
            http.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            return false;
        }

        if (!GrpcProtocol.IsGrpcContentType(http.Request.ContentType))
        {
            http.Response.StatusCode = StatusCodes.Status415UnsupportedMediaType;
            return false;
        }

        if (!string.Equals(http.Request.Protocol, "HTTP/2", StringComparison.Ordinal))
        {
            // gRPC needs HTTP/2 trailers; answer in a way an HTTP/1 client can read.
            http.Response.StatusCode = StatusCodes.Status426UpgradeRequired;
            return false;
        }

        return true;
    }

    /// <summary>
    /// Writes grpc-status and grpc-message: in the trailers when the response has started,
    /// otherwise in the headers ("trailers-only" response, how errors without messages are sent).
    /// </summary>
    internal static void WriteStatus(HttpContext http, Status status, IEnumerable<KeyValuePair<string, string>> trailers)
    {
        var response = http.Response;
        var values = trailers.Append(new(GrpcProtocol.StatusHeader, ((int)status.Code).ToString(System.Globalization.CultureInfo.InvariantCulture)));
        if (!string.IsNullOrEmpty(status.Detail))
        {
            values = values.Append(new(GrpcProtocol.MessageHeader, GrpcProtocol.EncodeMessage(status.Detail)));
        }

        foreach (var (key, value) in values)
        {
            if (response.HasStarted)
            {
                response.AppendTrailer(key, value);
            }
            else
            {
                response.Headers[key] = value;
            }
        }
    }

    private DateTimeOffset? GetDeadline(HttpContext http)
    {
        var now = DateTimeOffset.UtcNow;
        DateTimeOffset? deadline = GrpcProtocol.TryParseTimeout(http.Request.Headers[GrpcProtocol.TimeoutHeader], out var timeout)
            ? now + timeout
            : null;
        if (_method.Type == MethodType.Unary)
        {
            var cap = now + _options.MaxUnaryCallDuration;
            if (deadline is null || deadline > cap)
            {
                deadline = cap;
            }
        }

        return deadline;
    }

    private static TimeSpan Clamp(TimeSpan remaining) =>
        remaining <= TimeSpan.Zero ? TimeSpan.FromTicks(1) : remaining;

    private sealed class ResponseStreamWriter : IServerStreamWriter<IMessage>
    {
        private readonly HttpContext _http;
        private readonly int _maxMessageSize;
        private readonly CancellationToken _callToken;

        public ResponseStreamWriter(HttpContext http, int maxMessageSize, CancellationToken callToken)
        {
            _http = http;
            _maxMessageSize = maxMessageSize;
            _callToken = callToken;
        }

        public async Task WriteAsync(IMessage message, CancellationToken cancellationToken = default)
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(_callToken, cancellationToken);
            await MessageFraming.WriteMessageAsync(_http.Response.BodyWriter, message, _maxMessageSize, linked.Token);
        }
    }
}
