Feature: Upload queue
  The queue holds everything that is not yet uploaded, in parallel, across cuts and boots.

  @C2C-QUE-01 @C2C-OPT-05 @evidence-doc
  Scenario: A burst of captures is uploaded concurrently
    Given a paired device
    And the network profile "cellular"
    When a large file of 24 MB is captured
    And 16 "jpg" files are captured at once
    And 4 more "jpg" files are captured while the device is uploading
    Then every captured file arrives intact within 180 seconds
    And the queue took every capture made while it was uploading
    And the cloud saw part uploads in parallel

  @C2C-QUE-02 @C2C-RTY-01 @C2C-RES-02 @evidence-doc
  Scenario: The queue survives a network interruption
    Given a paired device
    And the network profile "cellular"
    When a large file of 24 MB is captured
    And 3 "jpg" files are captured
    And the cloud has received part of the upload
    And the link goes down for 10 seconds
    Then every captured file arrives intact within 180 seconds

  @C2C-QUE-03 @C2C-RTY-02 @C2C-CTL-01 @smoke @evidence-doc
  Scenario: The queue survives a power cut and resumes from the last part
    Given a paired device
    And the network profile "bonded-cellular"
    And the cloud takes in one part at a time at 4 MB/s
    When a large file of 40 MB is captured
    And 2 "jpg" files are captured
    And the power is cut once the cloud has received part of the upload
    And the power comes back
    Then every captured file arrives intact within 300 seconds
    And the bytes re-sent per power cut are at most one part

  @C2C-RES-01 @C2C-QUE-03 @evidence-doc
  Scenario: The device survives power cuts at random points
    Given a paired device
    And the network profile "bonded-cellular"
    When a large file of 24 MB is captured
    And 6 "jpg" files are captured
    And the power is cut 3 times at random points
    Then every captured file arrives intact within 300 seconds

  @C2C-RES-05 @evidence-doc
  Scenario: Assets created offline are uploaded on reconnection
    Given a paired device
    When the link goes down
    And 3 "jpg" files are captured
    And the link comes back
    Then every captured file arrives intact within 180 seconds
