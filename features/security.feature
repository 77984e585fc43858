Feature: Security
  Secrets stay secret and the device speaks HTTPS to the real service only.

  @C2C-HDR-01 @smoke @evidence-doc
  Scenario: Every request carries a semver firmware version header
    Given a paired device
    When 2 "jpg" files are captured
    Then every captured file arrives intact within 120 seconds
    And every HTTPS request carried a semver x-client-version header

  @C2C-SEC-01 @smoke @evidence-doc
  Scenario: The device never sends a request over plain HTTP
    Given a paired device
    When 1 "jpg" file is captured
    Then every captured file arrives intact within 120 seconds
    And no request was made over plain HTTP

  @C2C-SEC-02 @evidence-doc
  Scenario: The device refuses a TLS interceptor it does not trust
    Given a paired device
    When a TLS interceptor with an untrusted certificate sits on the device's path
    And 1 "jpg" file is captured
    Then the interceptor saw no completed request from the device within 15 seconds
    When the interceptor is removed
    Then every captured file arrives intact within 120 seconds

  @C2C-SEC-02 @evidence-doc
  Scenario: The device checks the host name, not only the chain
    Given a paired device
    When a TLS interceptor with a trusted CA's certificate for another host sits on the device's path
    And 1 "jpg" file is captured
    Then the interceptor saw no completed request from the device within 15 seconds
    When the interceptor is removed
    Then every captured file arrives intact within 120 seconds

  @C2C-SEC-02 @evidence-doc
  Scenario: The device refuses an expired certificate
    Given a paired device
    When a TLS interceptor with a trusted CA's expired certificate sits on the device's path
    And 1 "jpg" file is captured
    Then the interceptor saw no completed request from the device within 15 seconds
    When the interceptor is removed
    Then every captured file arrives intact within 120 seconds

  @C2C-SEC-03 @evidence-doc
  Scenario: The client secret is not user-accessible
    Given a paired device
    When 1 "jpg" file is captured
    Then every captured file arrives intact within 120 seconds
    And the device's logs, state and status contain no client secret

  @C2C-SEC-04 @evidence-doc
  Scenario: Access and refresh tokens are protected
    Given a paired device
    When the cloud expires the device's access tokens
    And 1 "jpg" file is captured
    Then every captured file arrives intact within 120 seconds
    And the device's logs, state and status contain no access or refresh token

  @C2C-SEC-05 @declared @evidence-doc
  Scenario: Secrets and tokens are encrypted at rest
    Given the device profile
    Then the profile declares "C2C-SEC-05" with evidence
