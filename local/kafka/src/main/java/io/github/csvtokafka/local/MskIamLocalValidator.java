/*
 * A local stand-in for Amazon MSK's IAM authentication check, for the local stack's IAM listener
 * only (SASL/OAUTHBEARER over TLS). Test code: it never runs in production.
 *
 * The client (aws-msk-iam-sasl-signer-python) sends as its OAUTHBEARER token the base64url
 * encoding, without padding, of a SigV4-presigned URL:
 *
 *   https://kafka.REGION.amazonaws.com/?Action=kafka-cluster%3AConnect
 *       &X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=KEY%2FDATE%2FREGION%2Fkafka-cluster%2Faws4_request
 *       &X-Amz-Date=...&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=...
 *       &User-Agent=...   (added after signing, so not part of the signature)
 *
 * This handler accepts a token only if all of these hold:
 *   - it decodes to an https URL for host kafka.REGION.amazonaws.com and path "/", REGION being
 *     the one the stack was configured with;
 *   - Action is kafka-cluster:Connect, the algorithm AWS4-HMAC-SHA256, the signed headers "host";
 *   - the credential scope is KEY/DATE/REGION/kafka-cluster/aws4_request, with KEY the access key
 *     the stack was configured with and DATE the day of X-Amz-Date;
 *   - X-Amz-Date is not more than five minutes in the future, and X-Amz-Date + X-Amz-Expires
 *     (at most 900 s) is not past;
 *   - the signature is the SigV4 signature of GET / with that query (less X-Amz-Signature and
 *     User-Agent) and that host, under the configured secret key.
 *
 * What real MSK checks beyond this: that the access key belongs to a live IAM identity (and a
 * session token, if any, to a live session), and then, on every request, the identity's IAM
 * policies (kafka-cluster:WriteData, DescribeTransactionalId, ...). None of that is emulated.
 *
 * Configured through the listener's JAAS options:
 *   region            the AWS region of the tokens it accepts
 *   credentialsFile   a properties file with accessKeyId and secretAccessKey (kept out of
 *                     server.properties, and never logged)
 * A refused token is logged with its reason, never with the token or a key.
 */
package io.github.csvtokafka.local;

import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.URLDecoder;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.Base64;
import java.util.Collections;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import javax.security.auth.callback.Callback;
import javax.security.auth.callback.UnsupportedCallbackException;
import javax.security.auth.login.AppConfigurationEntry;

import org.apache.kafka.common.security.auth.AuthenticateCallbackHandler;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerToken;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallback;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

public final class MskIamLocalValidator implements AuthenticateCallbackHandler {
    private static final Logger LOG = LoggerFactory.getLogger(MskIamLocalValidator.class);

    static final String SERVICE = "kafka-cluster";
    static final String ACTION = "kafka-cluster:Connect";
    static final long MAX_EXPIRES_SECONDS = 900;
    static final long MAX_CLOCK_SKEW_SECONDS = 300;
    private static final DateTimeFormatter AMZ_DATE =
            DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss'Z'").withZone(ZoneOffset.UTC);
    // SHA-256 of the empty body: botocore signs a presigned https GET with it.
    private static final String EMPTY_BODY_SHA256 =
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    private String region;
    private String accessKeyId;
    private byte[] secretAccessKey;

    /** A refused token: the reason goes to the broker's log and to the client, the token nowhere. */
    static final class Refused extends Exception {
        private static final long serialVersionUID = 1L;

        Refused(String reason) {
            super(reason);
        }
    }

    @Override
    public void configure(Map<String, ?> configs, String saslMechanism,
                          List<AppConfigurationEntry> jaasConfigEntries) {
        if (!OAuthBearerLoginModule.OAUTHBEARER_MECHANISM.equals(saslMechanism)) {
            throw new IllegalArgumentException("unexpected SASL mechanism: " + saslMechanism);
        }
        if (jaasConfigEntries.size() != 1) {
            throw new IllegalArgumentException("expected one JAAS entry, got " + jaasConfigEntries.size());
        }
        Map<String, ?> options = jaasConfigEntries.get(0).getOptions();
        region = required(options, "region");
        Path file = Path.of(required(options, "credentialsFile"));
        Properties credentials = new Properties();
        try (InputStream in = Files.newInputStream(file)) {
            credentials.load(in);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read credentialsFile " + file + ": " + e.getMessage(), e);
        }
        accessKeyId = credentials.getProperty("accessKeyId", "");
        String secret = credentials.getProperty("secretAccessKey", "");
        if (accessKeyId.isEmpty() || secret.isEmpty()) {
            throw new IllegalArgumentException(file + " needs accessKeyId and secretAccessKey");
        }
        secretAccessKey = secret.getBytes(StandardCharsets.UTF_8);
        LOG.info("MSK IAM stand-in: accepting tokens for region {} signed by access key {}", region, accessKeyId);
    }

    private static String required(Map<String, ?> options, String name) {
        Object value = options.get(name);
        if (!(value instanceof String) || ((String) value).isEmpty()) {
            throw new IllegalArgumentException("JAAS option " + name + " is required");
        }
        return (String) value;
    }

    @Override
    public void handle(Callback[] callbacks) throws UnsupportedCallbackException {
        for (Callback callback : callbacks) {
            if (!(callback instanceof OAuthBearerValidatorCallback)) {
                throw new UnsupportedCallbackException(callback);
            }
            OAuthBearerValidatorCallback validation = (OAuthBearerValidatorCallback) callback;
            try {
                validation.token(validate(validation.tokenValue(), Instant.now()));
            } catch (Refused refused) {
                LOG.warn("MSK IAM stand-in refused a token: {}", refused.getMessage());
                // The status is sent to the client as {"status":"..."}: no quotes in it.
                validation.error("invalid_token: " + refused.getMessage().replace('"', '\''), null, null);
            }
        }
    }

    OAuthBearerToken validate(String tokenValue, Instant now) throws Refused {
        URI url = decode(tokenValue);
        if (!"https".equals(url.getScheme())) {
            throw new Refused("the signed URL is not https");
        }
        String host = "kafka." + region + ".amazonaws.com";
        if (!host.equals(url.getHost()) || url.getPort() != -1) {
            throw new Refused("the token was signed for host " + url.getHost() + ", not " + host);
        }
        if (!"/".equals(url.getRawPath())) {
            throw new Refused("the signed URL's path is not /");
        }
        Map<String, String> query = parseQuery(url.getRawQuery());
        if (!ACTION.equals(query.get("Action"))) {
            throw new Refused("the token's action is " + query.get("Action") + ", not " + ACTION);
        }
        if (!"AWS4-HMAC-SHA256".equals(query.get("X-Amz-Algorithm"))) {
            throw new Refused("unsupported signing algorithm " + query.get("X-Amz-Algorithm"));
        }
        if (!"host".equals(query.get("X-Amz-SignedHeaders"))) {
            throw new Refused("the signed headers are " + query.get("X-Amz-SignedHeaders") + ", not host");
        }
        String amzDate = present(query, "X-Amz-Date");
        Instant signedAt;
        long expires;
        try {
            signedAt = Instant.from(AMZ_DATE.parse(amzDate));
            expires = Long.parseLong(present(query, "X-Amz-Expires"));
        } catch (DateTimeParseException | NumberFormatException e) {
            throw new Refused("unreadable X-Amz-Date or X-Amz-Expires");
        }
        if (expires <= 0 || expires > MAX_EXPIRES_SECONDS) {
            throw new Refused("X-Amz-Expires is " + expires + " s; at most " + MAX_EXPIRES_SECONDS + " allowed");
        }
        if (signedAt.isAfter(now.plusSeconds(MAX_CLOCK_SKEW_SECONDS))) {
            throw new Refused("the token was signed in the future (" + amzDate + ")");
        }
        Instant expiry = signedAt.plusSeconds(expires);
        if (!now.isBefore(expiry)) {
            throw new Refused("the token expired at " + expiry);
        }
        String[] credential = present(query, "X-Amz-Credential").split("/", -1);
        if (credential.length != 5 || !credential[2].equals(region) || !credential[3].equals(SERVICE)
                || !credential[4].equals("aws4_request") || !credential[1].equals(amzDate.substring(0, 8))) {
            throw new Refused("the credential scope is not <key>/" + amzDate.substring(0, 8) + "/" + region + "/"
                    + SERVICE + "/aws4_request");
        }
        if (!credential[0].equals(accessKeyId)) {
            throw new Refused("unknown access key " + credential[0]);
        }
        String scope = String.join("/", credential[1], credential[2], credential[3], credential[4]);
        String expected = signature(canonicalQuery(query), host, amzDate, scope, credential[1]);
        byte[] given = present(query, "X-Amz-Signature").getBytes(StandardCharsets.US_ASCII);
        if (!MessageDigest.isEqual(expected.getBytes(StandardCharsets.US_ASCII), given)) {
            throw new Refused("the signature does not match (wrong secret key?)");
        }
        return new Token(tokenValue, credential[0], signedAt.toEpochMilli(), expiry.toEpochMilli());
    }

    private static URI decode(String tokenValue) throws Refused {
        try {
            String url = new String(Base64.getUrlDecoder().decode(tokenValue), StandardCharsets.UTF_8);
            return new URI(url);
        } catch (IllegalArgumentException | URISyntaxException e) {
            throw new Refused("the token is not a base64url-encoded URL");
        }
    }

    private static Map<String, String> parseQuery(String rawQuery) throws Refused {
        if (rawQuery == null || rawQuery.isEmpty()) {
            throw new Refused("the signed URL has no query");
        }
        Map<String, String> query = new HashMap<>();
        for (String pair : rawQuery.split("&", -1)) {
            int eq = pair.indexOf('=');
            String key = unescape(eq < 0 ? pair : pair.substring(0, eq));
            String value = eq < 0 ? "" : unescape(pair.substring(eq + 1));
            if (query.put(key, value) != null) {
                throw new Refused("the query repeats " + key);
            }
        }
        return query;
    }

    private static String unescape(String s) throws Refused {
        try {
            // SigV4 escapes every reserved character, so a literal '+' is a '+', not a space.
            return URLDecoder.decode(s.replace("+", "%2B"), StandardCharsets.UTF_8);
        } catch (IllegalArgumentException e) {
            throw new Refused("the query is not URL-encoded");
        }
    }

    private static String present(Map<String, String> query, String name) throws Refused {
        String value = query.get(name);
        if (value == null || value.isEmpty()) {
            throw new Refused("the token has no " + name);
        }
        return value;
    }

    /** SigV4's canonical query: every parameter but the signature (and User-Agent, added after
     * signing), sorted by name, names and values escaped as RFC 3986 says. */
    static String canonicalQuery(Map<String, String> query) {
        StringBuilder out = new StringBuilder();
        for (Map.Entry<String, String> e : new TreeMap<>(query).entrySet()) {
            if (e.getKey().equals("X-Amz-Signature") || e.getKey().equals("User-Agent")) {
                continue;
            }
            if (out.length() > 0) {
                out.append('&');
            }
            out.append(escape(e.getKey())).append('=').append(escape(e.getValue()));
        }
        return out.toString();
    }

    private static String escape(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8)
                .replace("+", "%20").replace("*", "%2A").replace("%7E", "~");
    }

    private String signature(String canonicalQuery, String host, String amzDate, String scope, String day)
            throws Refused {
        String canonicalRequest = String.join("\n",
                "GET", "/", canonicalQuery, "host:" + host, "", "host", EMPTY_BODY_SHA256);
        String stringToSign = String.join("\n",
                "AWS4-HMAC-SHA256", amzDate, scope, hex(sha256(canonicalRequest)));
        byte[] prefix = "AWS4".getBytes(StandardCharsets.UTF_8);
        byte[] key = new byte[prefix.length + secretAccessKey.length];
        System.arraycopy(prefix, 0, key, 0, prefix.length);
        System.arraycopy(secretAccessKey, 0, key, prefix.length, secretAccessKey.length);
        for (String part : new String[] {day, region, SERVICE, "aws4_request"}) {
            key = hmac(key, part);
        }
        return hex(hmac(key, stringToSign));
    }

    private static byte[] sha256(String s) throws Refused {
        try {
            return MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
        } catch (GeneralSecurityException e) {
            throw new Refused("no SHA-256 in this JVM");
        }
    }

    private static byte[] hmac(byte[] key, String data) throws Refused {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(key, "HmacSHA256"));
            return mac.doFinal(data.getBytes(StandardCharsets.UTF_8));
        } catch (GeneralSecurityException e) {
            throw new Refused("no HmacSHA256 in this JVM");
        }
    }

    private static String hex(byte[] bytes) {
        return HexFormat.of().formatHex(bytes);
    }

    @Override
    public void close() {
    }

    /** An accepted token: its principal is the access key id (real MSK: the IAM identity's ARN). */
    private static final class Token implements OAuthBearerToken {
        private final String value;
        private final String principal;
        private final long startMs;
        private final long lifetimeMs;

        Token(String value, String principal, long startMs, long lifetimeMs) {
            this.value = value;
            this.principal = principal;
            this.startMs = startMs;
            this.lifetimeMs = lifetimeMs;
        }

        @Override
        public String value() {
            return value;
        }

        @Override
        public Set<String> scope() {
            return Collections.emptySet();
        }

        @Override
        public long lifetimeMs() {
            return lifetimeMs;
        }

        @Override
        public String principalName() {
            return principal;
        }

        @Override
        public Long startTimeMs() {
            return startMs;
        }

        @Override
        public String toString() {
            return "MskIamLocalValidator.Token(principal=" + principal + ")";
        }
    }
}
